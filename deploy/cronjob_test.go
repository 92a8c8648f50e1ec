package deploy_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"gopkg.in/yaml.v3"

	"github.com/tombstone-proxy/tombstone/catalog"
	"github.com/tombstone-proxy/tombstone/internal/buildtest"
	"github.com/tombstone-proxy/tombstone/internal/pgtest"
	"github.com/tombstone-proxy/tombstone/policy"
)

type cronJobSpec struct {
	Schedule          string `yaml:"schedule"`
	ConcurrencyPolicy string `yaml:"concurrencyPolicy"`
	JobTemplate       struct {
		Spec struct {
			Template struct {
				Spec yaml.Node `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	} `yaml:"jobTemplate"`
}

// jobPod is what a purge job's pod needs beyond podSpec: its restart
// policy and where each environment variable comes from.
type jobPod struct {
	RestartPolicy string `yaml:"restartPolicy"`
	Containers    []struct {
		Env []struct {
			Name      string `yaml:"name"`
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
	} `yaml:"containers"`
}

// purgeJob is a scheduled purge as its manifest runs it.
type purgeJob struct {
	where  string
	args   []string // the container's args, $(VAR) unexpanded
	dsnVar string   // the variable holding the DSN, from a Secret
	config []byte
}

var envRef = regexp.MustCompile(`^\$\(([A-Za-z_][A-Za-z0-9_]*)\)$`)

// checkCronJob checks a scheduled `tombstone purge`: never two at once,
// the pinned image, the DSN from a Secret, the configuration from a
// ConfigMap that sets a retention and the audit log.
func checkCronJob(t *testing.T, o *object, configMaps map[string]*object, repo, tag string) purgeJob {
	t.Helper()
	var spec cronJobSpec
	if err := o.Spec.Decode(&spec); err != nil {
		t.Fatalf("%s: spec: %v", o, err)
	}
	if len(strings.Fields(spec.Schedule)) != 5 {
		t.Errorf("%s: schedule %q is not five cron fields", o, spec.Schedule)
	}
	if spec.ConcurrencyPolicy != "Forbid" {
		t.Errorf("%s: concurrencyPolicy %q, want Forbid: two purges at once would contend for the same rows", o, spec.ConcurrencyPolicy)
	}
	var pod podSpec
	var job jobPod
	if err := spec.JobTemplate.Spec.Template.Spec.Decode(&pod); err != nil {
		t.Fatalf("%s: jobTemplate pod spec: %v", o, err)
	}
	if err := spec.JobTemplate.Spec.Template.Spec.Decode(&job); err != nil {
		t.Fatalf("%s: jobTemplate pod spec: %v", o, err)
	}
	if job.RestartPolicy != "Never" && job.RestartPolicy != "OnFailure" {
		t.Errorf("%s: restartPolicy %q; a Job's pod needs Never or OnFailure", o, job.RestartPolicy)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%s: %d containers, want the one that purges", o, len(pod.Containers))
	}
	c := &pod.Containers[0]
	where := o.String() + ", container " + c.Name
	if r, ctag := splitImage(c.Image); r != repo || ctag != tag {
		t.Errorf("%s: image %s, want %s:%s as kustomization.yaml pins it", where, c.Image, repo, tag)
	}
	if len(c.Command) > 0 {
		t.Errorf("%s: command %v overrides the image's ENTRYPOINT; set args only", where, c.Command)
	}
	if len(c.Args) == 0 || c.Args[0] != "purge" {
		t.Fatalf("%s: args %v do not run tombstone purge", where, c.Args)
	}
	flag := func(name string) string {
		i := slices.Index(c.Args, name)
		if i < 0 || i+1 >= len(c.Args) {
			t.Fatalf("%s: args %v have no %s", where, c.Args, name)
		}
		return c.Args[i+1]
	}
	if p := flag("--config"); p != configPath {
		t.Errorf("%s: --config %s, want %s", where, p, configPath)
	}
	m := envRef.FindStringSubmatch(flag("--dsn"))
	if m == nil {
		t.Fatalf("%s: --dsn %q is not $(VARIABLE): the DSN holds a password and comes from a Secret", where, flag("--dsn"))
	}
	fromSecret := false
	for _, e := range job.Containers[0].Env {
		if e.Name == m[1] && e.Value == "" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Name != "" {
			fromSecret = true
		}
	}
	if !fromSecret {
		t.Errorf("%s: env %s is not set from a secretKeyRef", where, m[1])
	}
	if nr := pod.SecurityContext.RunAsNonRoot; (nr == nil || !*nr) && (c.SecurityContext.RunAsNonRoot == nil || !*c.SecurityContext.RunAsNonRoot) {
		t.Errorf("%s: set securityContext.runAsNonRoot: true (the image runs as a numeric non-root user)", where)
	}

	var cm *object
	for _, vm := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if vm.MountPath == path.Dir(configPath) && v.Name == vm.Name && v.ConfigMap != nil && len(v.ConfigMap.Items) == 0 {
				cm = configMaps[v.ConfigMap.Name]
			}
		}
	}
	if cm == nil {
		t.Fatalf("%s: no whole ConfigMap, defined in deploy/kubernetes, mounted at %s", where, path.Dir(configPath))
	}
	text, ok := cm.Data[path.Base(configPath)]
	if !ok {
		t.Fatalf("%s: has no key %s", cm, path.Base(configPath))
	}
	cfg := parseConfig(t, cm.String()+" data."+path.Base(configPath), []byte(text))
	retained := false
	for _, tb := range cfg.Tables {
		retained = retained || tb.Retention != 0 || cfg.Defaults.Retention != 0
	}
	if !retained {
		t.Errorf("%s: no table has a retention, so the purge would remove nothing", cm)
	}
	if cfg.Audit.Table == "" {
		t.Errorf("%s: audit.table is not set: a purge removes data for good and should leave a record", cm)
	}
	return purgeJob{where: where, args: c.Args, dsnVar: m[1], config: []byte(text)}
}

// purgeJobs returns the scheduled purges of deploy/kubernetes, checked.
func purgeJobs(t *testing.T) []purgeJob {
	t.Helper()
	objects, kust := readManifests(t, filepath.Join(root, "deploy", "kubernetes"))
	tag := ""
	images, _ := kust["images"].([]any)
	for _, im := range images {
		if m, ok := im.(map[string]any); ok && m["name"] == imageRepo(t) {
			tag, _ = m["newTag"].(string)
		}
	}
	configMaps := map[string]*object{}
	for _, o := range objects {
		if o.Kind == "ConfigMap" {
			configMaps[o.Metadata.Name] = o
		}
	}
	var jobs []purgeJob
	for _, o := range objects {
		if o.Kind == "CronJob" {
			jobs = append(jobs, checkCronJob(t, o, configMaps, imageRepo(t), tag))
		}
	}
	return jobs
}

// TestCronJobPurges runs each scheduled purge's command line, as the
// manifest gives it, with the real binary against a real PostgreSQL
// holding its configuration's tables: it must exit 0, remove the rows
// past retention, keep the others and audit what it removed.
func TestCronJobPurges(t *testing.T) {
	jobs := purgeJobs(t)
	if len(jobs) == 0 {
		t.Fatal("deploy/kubernetes has no CronJob running tombstone purge")
	}
	if testing.Short() {
		t.Skip("needs PostgreSQL; the manifests were checked, running them is skipped with -short")
	}
	bin := buildtest.Tombstone(t)
	pg := pgtest.Shared(t)
	for _, job := range jobs {
		t.Run(job.where, func(t *testing.T) {
			cfg := parseConfig(t, job.where, job.config)
			db := pgtest.CreateDB(t, pg)
			audit := policy.RelName{Schema: cfg.Audit.Schema, Name: cfg.Audit.Relation}
			sql := strings.Join(catalog.AuditTable(audit), ";\n") + ";\n"
			for _, tb := range cfg.Tables {
				name, deletedAt := catalog.QuoteIdent(tb.Relation), catalog.QuoteIdent(tb.DeletedAt)
				cols := "id int PRIMARY KEY, " + deletedAt + " timestamptz"
				if tb.DeletedBy != "" {
					cols += ", " + catalog.QuoteIdent(tb.DeletedBy) + " text"
				}
				// One row past any retention, one deleted an hour ago, one live.
				sql += fmt.Sprintf("CREATE TABLE %s (%s);\nINSERT INTO %s (id, %s) VALUES (1, now() - interval '100 years'), (2, now() - interval '1 hour'), (3, NULL);\n",
					name, cols, name, deletedAt)
			}
			pgtest.Exec(t, pg, db, sql)
			cfgPath := filepath.Join(t.TempDir(), "config.yaml")
			if err := os.WriteFile(cfgPath, job.config, 0o600); err != nil {
				t.Fatal(err)
			}
			args := slices.Clone(job.args)
			for i, a := range args {
				switch {
				case a == configPath:
					args[i] = cfgPath
				case a == "$("+job.dsnVar+")":
					// Kubernetes expands $(VAR) in args from the env.
					args[i] = pg.DSN(db)
				}
			}
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("tombstone %s: %v\n%s", strings.Join(job.args, " "), err, out)
			}
			n := len(cfg.Tables)
			if want := fmt.Sprintf("%d rows removed from %d tables", n, n); !strings.Contains(string(out), want) {
				t.Errorf("tombstone %s: want %q, one row per table:\n%s", strings.Join(job.args, " "), want, out)
			}
			conn, err := pgx.Connect(context.Background(), pg.DSN(db))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(context.Background())
			var left, audited int
			for _, tb := range cfg.Tables {
				var k int
				if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+catalog.QuoteIdent(tb.Relation)).Scan(&k); err != nil {
					t.Fatal(err)
				}
				left += k
			}
			if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM "+catalog.QuoteIdent(audit.Schema)+"."+catalog.QuoteIdent(audit.Name)+" WHERE action = 'purge'").Scan(&audited); err != nil {
				t.Fatal(err)
			}
			if left != 2*n || audited != n {
				t.Errorf("after the purge: %d rows left, %d audited; want %d (the recent and the live ones) and %d", left, audited, 2*n, n)
			}
		})
	}
}
