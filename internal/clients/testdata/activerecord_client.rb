# ActiveRecord 6 (Debian ruby-activerecord, ruby-pg) through Tombstone. A
# scenario runs once through Tombstone (soft-delete database) and once
# directly against the twin whose deletes are real; what each side saw is
# recorded with see and the two records must be equal. expect states what
# the answer must be on both sides.
require 'active_record'
require 'pg'
require 'json'

def version(name, value)
  puts "version: #{name} #{value}"
end
version('activerecord', ActiveRecord::VERSION::STRING)
version('ruby-pg', PG::VERSION)
version('ruby', RUBY_VERSION)
$stdout.sync = true

class Genre < ActiveRecord::Base; end

# lock_version turns on optimistic locking: destroy and update add
# "AND lock_version = n" and raise StaleObjectError when no row matched,
# so the soft delete's count must be right.
class Author < ActiveRecord::Base
  has_many :books, -> { order(:id) }, dependent: :destroy
end

class Book < ActiveRecord::Base
  belongs_to :author
  belongs_to :genre, optional: true
end

class Side
  attr_reader :name, :url, :md5_url, :seen

  def initialize(name, url, md5_url)
    @name, @url, @md5_url, @seen = name, url, md5_url, []
  end

  def soft? = name == 'soft'

  def see(label, value)
    @seen << [label, JSON.generate(value)]
    value
  end

  def expect(label, got, want)
    raise "#{name}: #{label}: got #{got.inspect}, want #{want.inspect}" unless got == want

    puts "ok: #{name}: #{label}"
    see(label, got)
  end

  # On the soft side, read as the privileged role, directly, that the rows
  # are still on disk with deleted_at set.
  def admin_deleted(table, ids)
    return unless soft?

    c = PG.connect(ENV.fetch('TS_ADMIN_SOFT_URL'))
    got = c.exec_params("SELECT id, deleted_at IS NOT NULL AS d FROM #{table} WHERE id = ANY($1::int[]) ORDER BY id",
                        ["{#{ids.join(',')}}"]).map { |r| [r['id'].to_i, r['d'] == 't'] }
    c.close
    raise "#{table} #{ids} must be on disk with deleted_at set; on disk: #{got}" unless got == ids.map { |i| [i, true] }

    puts "ok: soft: #{table} #{ids} kept on disk with deleted_at set"
  end
end

def scenario(side)
  ActiveRecord::Base.establish_connection(side.url)
  side.expect('count before', Author.count, 6)

  # destroy: dependent: :destroy destroys each book, then the author with
  # its lock_version checked.
  a = Author.find(1)
  a.destroy!
  side.expect('destroy', a.destroyed?, true)
  side.admin_deleted('authors', [1])
  side.admin_deleted('books', [1, 2, 3])
  side.expect('find_by of the destroyed row', Author.find_by(id: 1), nil)
  side.expect('exists?', Author.exists?(1), false)
  side.expect('list', Author.order(:id).pluck(:id), [2, 3, 4, 5, 6])
  side.expect('count', Author.count, 5)
  side.see('aggregates', [Book.count, Book.sum(:pages), Book.maximum(:pages), Book.average(:pages).to_f])
  side.see('joins', Book.joins(:author).order('books.id').pluck('authors.name', 'books.title'))
  side.see('includes', Author.includes(:books).order(:id).map { |x| [x.name, x.books.map(&:title)] })
  side.see('eager_load', Author.eager_load(:books).order('authors.id', 'books.id').map { |x| [x.name, x.books.map(&:title)] })
  side.see('preload belongs_to', Book.preload(:author, :genre).order(:id).map { |b| [b.title, b.author.name, b.genre.label] })
  side.see('group count', Book.joins(:genre).group('genres.label').order('genres.label').count)

  # delete_all returns the rows-affected count.
  side.expect('delete_all of one row', Book.where(id: 4).delete_all, 1)
  side.expect('delete_all of a deleted row', Book.where(id: 4).delete_all, 0)
  side.expect('bulk delete_all', Book.where('pages > ?', 150).delete_all, 3)

  # A rolled-back transaction undoes the destroy.
  Author.transaction do
    Author.find(2).destroy!
    side.expect('count in the transaction', Author.count, 4)
    raise ActiveRecord::Rollback
  end
  side.expect('count after rollback', Author.count, 5)
  side.expect('children after rollback', Book.where(author_id: 2).count, 2)

  # Optimistic locking: destroying a stale copy deletes nothing and raises.
  fresh = Author.find(3)
  stale = Author.find(3)
  fresh.update!(name: 'author3-renamed')
  begin
    stale.destroy
    side.expect('destroy of a stale copy', 'destroyed', 'StaleObjectError')
  rescue ActiveRecord::StaleObjectError
    side.expect('destroy of a stale copy', 'StaleObjectError', 'StaleObjectError')
  end
  side.expect('the row survives a stale destroy', Author.where(id: 3).pluck(:name), ['author3-renamed'])
  fresh.reload.destroy!
  side.expect('destroy with the current lock_version', Author.exists?(3), false)

  # ruby-pg directly: bound parameters and a named prepared statement.
  raw = ActiveRecord::Base.connection.raw_connection
  side.expect('exec_params DELETE', raw.exec_params('DELETE FROM books WHERE id = $1', [5]).cmd_tuples, 1)
  raw.prepare('delete_book', 'DELETE FROM books WHERE id = $1')
  side.expect('exec_prepared DELETE', raw.exec_prepared('delete_book', [6]).cmd_tuples, 1)
  side.expect('exec_prepared DELETE of a deleted row', raw.exec_prepared('delete_book', [6]).cmd_tuples, 0)
  ActiveRecord::Base.remove_connection

  ActiveRecord::Base.establish_connection(side.md5_url)
  side.expect('MD5 login: destroy', Book.find(13).destroy.destroyed?, true)
  side.expect('MD5 login: exists?', Book.exists?(13), false)
  ActiveRecord::Base.remove_connection
end

begin
  soft = Side.new('soft', ENV.fetch('TS_SOFT_URL'), ENV.fetch('TS_SOFT_MD5_URL'))
  real = Side.new('real', ENV.fetch('TS_REAL_URL'), ENV.fetch('TS_REAL_MD5_URL'))
  scenario(soft)
  scenario(real)
  n = [soft.seen.size, real.seen.size].max
  bad = (0...n).reject { |i| soft.seen[i] == real.seen[i] }.map do |i|
    "#{soft.seen[i]&.first}: through Tombstone #{soft.seen[i]&.last}, direct #{real.seen[i]&.first} #{real.seen[i]&.last}"
  end
  raise "through Tombstone and direct differ:\n  #{bad.join("\n  ")}" unless bad.empty?

  puts "ok: through Tombstone and direct agree on #{n} observations"
rescue StandardError => e
  puts "FAIL: #{e.class}: #{e.message}\n  #{e.backtrace.first(8).join("\n  ")}"
  exit 1
end
