"""The Django app of the client matrix (django_client.py). Its models must
belong to an installed app: Django's delete collector finds the CASCADE
children through the app registry, and a model outside it has none."""
