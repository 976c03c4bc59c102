/* fo.fs: the file operations whose safety matters to fo's state files — an atomic write
 * (temp file in the same directory, fsync, rename, fsync of the directory) and a durable
 * append (write, fsync) — plus mkdir -p, an existence test, a directory listing and
 * terminal helpers. Every failure raises an error naming the path. */
#define _XOPEN_SOURCE 700 /* realpath(3) */
#include "fo/loop.h"
#include "fo/runtime.h"
#include "lock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

/* Optional mode argument at `arg` (an integer such as tonumber("600", 8)), else `def`. */
static mode_t check_mode(lua_State *L, int arg, mode_t def)
{
    lua_Integer m = luaL_optinteger(L, arg, (lua_Integer)def);
    luaL_argcheck(L, m >= 0 && m <= 07777, arg, "mode must be between 0 and 07777 (octal)");
    return (mode_t)m;
}

/* The directory part of `path` into `out` ("." when there is none). */
static void dir_of(const char *path, char *out, size_t size)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, size, ".");
    else if (slash == path)
        snprintf(out, size, "/");
    else
        snprintf(out, size, "%.*s", (int)(slash - path), path);
}

static int write_all(int fd, const char *data, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, data, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        data += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Makes the rename durable: the directory entry is flushed too. */
static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

/* fo.fs.write_atomic(path, data [, mode]) → true. Readers see the old file or the new
 * one, never a part; after a crash, one of the two. mode defaults to 0600. */
static int fs_write_atomic(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *data = luaL_checklstring(L, 2, &n);
    mode_t mode = check_mode(L, 3, 0600);
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    luaL_argcheck(L, *base != '\0', 1, "path names a directory, not a file");
    char dir[PATH_MAX], tmp[PATH_MAX];
    dir_of(path, dir, sizeof dir);
    int len = snprintf(tmp, sizeof tmp, "%s/.%s.tmp.XXXXXX", dir, base);
    if (len < 0 || (size_t)len >= sizeof tmp)
        return luaL_error(L, "fo.fs.write_atomic: path too long: '%s'", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return luaL_error(L,
                          "fo.fs.write_atomic: cannot create a temporary file in '%s' for "
                          "'%s': %s",
                          dir, path, strerror(errno));
    const char *step = NULL;
    if (fchmod(fd, mode) != 0)
        step = "set the mode of";
    else if (write_all(fd, data, n) != 0)
        step = "write";
    else if (fsync(fd) != 0)
        step = "flush (fsync)";
    int saved = errno;
    if (close(fd) != 0 && !step) {
        step = "close";
        saved = errno;
    }
    if (!step && rename(tmp, path) != 0) {
        step = "rename the temporary file onto";
        saved = errno;
    }
    if (step) {
        unlink(tmp);
        return luaL_error(L, "fo.fs.write_atomic: cannot %s '%s': %s", step, path, strerror(saved));
    }
    if (fsync_dir(dir) != 0)
        return luaL_error(L,
                          "fo.fs.write_atomic: wrote '%s' but cannot flush its directory "
                          "'%s': %s",
                          path, dir, strerror(errno));
    lua_pushboolean(L, 1);
    return 1;
}

/* fo.fs.append(path, data [, mode]) → size: appends data to the file at path (created with
 * mode, default 0600, when missing) in one write, then fsyncs it (and its directory when the
 * file was created). Returns the file's size after the append. After a crash, the file
 * holds its old content followed by a prefix of data (possibly all, possibly none): a
 * reader must detect a torn tail (fo's state log checksums each line). */
static int fs_append(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *data = luaL_checklstring(L, 2, &n);
    mode_t mode = check_mode(L, 3, 0600);
    int created = 1;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    }
    if (fd < 0)
        return luaL_error(L, "fo.fs.append: cannot open '%s': %s", path, strerror(errno));
    const char *step = NULL;
    struct stat st;
    if (created && fchmod(fd, mode) != 0) /* the umask does not narrow it */
        step = "set the mode of";
    else if (write_all(fd, data, n) != 0)
        step = "write";
    else if (fsync(fd) != 0)
        step = "flush (fsync)";
    else if (fstat(fd, &st) != 0)
        step = "stat";
    int saved = errno;
    if (close(fd) != 0 && !step) {
        step = "close";
        saved = errno;
    }
    if (step)
        return luaL_error(L, "fo.fs.append: cannot %s '%s': %s", step, path, strerror(saved));
    if (created) {
        char dir[PATH_MAX];
        dir_of(path, dir, sizeof dir);
        if (fsync_dir(dir) != 0)
            return luaL_error(L,
                              "fo.fs.append: created '%s' but cannot flush its directory "
                              "'%s': %s",
                              path, dir, strerror(errno));
    }
    lua_pushinteger(L, (lua_Integer)st.st_size);
    return 1;
}

/* fo.fs.append_async: an append whose write and fsync run on the writer thread while the
 * calling task is parked, so that the loop serves other tasks during the fsync (a served
 * simulator keeps answering while one group of calls is made durable). One writer thread
 * serves the whole process, started at the first append and then asleep between jobs: a
 * thread made per append cost a thread creation each time, and a new thread waits for a
 * CPU behind the running ones on a busy machine (milliseconds), where a woken sleeper is
 * scheduled at once. Jobs run in the order they were queued; those queued while the writer
 * was busy go to their file in one writev and share one fdatasync.
 *
 * The per-append costs are kept off the path: a file stays open across appends (an open
 * and a close each time cost as much as the write; it is reopened when the path names
 * another file — a log replaced by a rename — and closed at exit), and the writer tells the
 * loop that jobs finished through one pipe per Lua state, written once per batch, not a
 * pipe per job. */

/* A file appends go to, kept open across them. The loop thread's: jobs in flight hold it
 * (`users`), the writer only reads it. */
struct append_file {
    struct append_file *next;
    int fd;
    dev_t dev;
    ino_t ino;
    int users;      /* jobs queued or running on fd */
    int current;    /* was the file at path when last looked: appends to path reuse it */
    int failed;     /* an append_kept to it failed: nothing more lands after a possibly torn one */
    int tail_known; /* appends with a reserve: written at `end`, not with O_APPEND */
    long long end;  /* where the data ends (the zeros after it are the reserve) */
    long long zeros_to; /* the file's size: zeros from `end` to here */
    char path[PATH_MAX];
};

/* Open files kept without a job on them, beyond which the least recently used is closed. */
#define APPEND_FILES_KEPT 8

/* What one Lua state's appends share: the open files and the channel back to the loop. */
struct appender {
    fo_loop *loop;
    int wake[2]; /* the writer writes a byte to wake[1] when jobs of this state finished */
    fo_watch watch;
    int pending;               /* jobs queued and not yet answered (the loop thread's) */
    struct append_job *done;   /* finished, newest first (writer.mu) */
    int signaled;              /* a byte was written since the loop last took `done` (writer.mu) */
    struct append_file *files; /* most recently used first */
};

struct append_job {
    struct appender *owner;
    struct append_file *file;
    int ref;
    int created; /* the append created the file: its directory is flushed too */
    char *data;
    size_t n;
    struct append_job *next; /* in the writer's queue, then in owner->done */
    const char *step;        /* what failed, or NULL */
    int err;
    long long size;
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t queued;
    struct append_job *head, *tail;
    int started;
} writer = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, NULL, 0};

/* The file whose last append failed (the writer thread's alone): appends queued after it
 * to the same file fail too, so that no record lands behind one that may be torn (a
 * reader takes a damaged record followed by valid ones for a damaged file, not a torn
 * tail). The caller then rewrites the file whole, a new file. */
static struct {
    int any;
    dev_t dev;
    ino_t ino;
} failed_file;

static int append_job_refused(const struct append_job *j)
{
    return failed_file.any && failed_file.dev == j->file->dev && failed_file.ino == j->file->ino;
}

static void append_job_fail(struct append_job *j, const char *step, int err)
{
    j->step = step;
    j->err = err;
    failed_file.any = 1;
    failed_file.dev = j->file->dev;
    failed_file.ino = j->file->ino;
}

#define APPEND_REFUSED "append (an earlier append to it failed) to"

/* Writes the data of the `count` jobs from `first` (same file, queue order) in writev
 * calls; each job is failed that did not land whole (the first with the error, the rest
 * as refused). */
static void append_run_write(struct append_job *first, int count)
{
    struct iovec iov[64];
    struct append_job *j = first;
    int left = count;
    while (left > 0) {
        if (append_job_refused(j)) { /* a write before failed: nothing more lands after it */
            for (; left > 0; left--, j = j->next)
                if (!j->step)
                    append_job_fail(j, APPEND_REFUSED, EIO);
            return;
        }
        int k = 0;
        size_t total = 0;
        struct append_job *from = j;
        for (struct append_job *x = j; k < left && k < 64; x = x->next, k++) {
            iov[k] = (struct iovec){.iov_base = x->data, .iov_len = x->n};
            total += x->n;
        }
        size_t written = 0;
        int err = 0;
        struct iovec *v = iov;
        int vn = k;
        while (written < total) {
            ssize_t w = writev(first->file->fd, v, vn);
            if (w <= 0) {
                if (w < 0 && errno == EINTR)
                    continue;
                err = w < 0 ? errno : EIO;
                break;
            }
            written += (size_t)w;
            while (vn > 0 && (size_t)w >= v->iov_len) { /* skip what landed whole */
                w -= (ssize_t)v->iov_len;
                v++;
                vn--;
            }
            if (vn > 0) {
                v->iov_base = (char *)v->iov_base + w;
                v->iov_len -= (size_t)w;
            }
        }
        size_t at = 0;
        for (int i = 0; i < k; i++, from = from->next) {
            at += from->n;
            if (at <= written || from->step)
                continue;
            if (append_job_refused(from))
                append_job_fail(from, APPEND_REFUSED, EIO);
            else
                append_job_fail(from, "write", err);
        }
        j = from;
        left -= k;
    }
}

/* Runs the jobs `first`.. (in queue order): each run of jobs to one file is written with
 * writev, then made durable with one fdatasync (and its directory flushed when an append
 * created the file). A job is answered only once its bytes are on disk. */
static void append_jobs_run(struct append_job *first)
{
    for (struct append_job *run = first, *after; run; run = after) {
        int count = 0;
        after = run;
        while (after && after->file == run->file) {
            count++;
            after = after->next;
        }
        if (append_job_refused(run)) {
            for (struct append_job *j = run; j != after; j = j->next)
                append_job_fail(j, APPEND_REFUSED, EIO);
            continue;
        }
        append_run_write(run, count);
        struct stat st;
        if (fstat(run->file->fd, &st) != 0) {
            int err = errno;
            for (struct append_job *j = run; j != after; j = j->next)
                if (!j->step)
                    append_job_fail(j, "stat", err);
            continue;
        }
        /* each job's size is the file's after its write: the runs' sizes count back from
         * the end (one writev lands whole, nothing between its parts) */
        long long end = (long long)st.st_size, behind = 0;
        for (struct append_job *j = run; j != after; j = j->next)
            behind += (long long)j->n;
        for (struct append_job *j = run; j != after; j = j->next) {
            behind -= (long long)j->n;
            j->size = end - behind;
        }
    }
    for (struct append_job *run = first, *after; run; run = after) {
        after = run;
        int pending = 0;
        while (after && after->file == run->file) {
            pending |= !after->step;
            after = after->next;
        }
        if (!pending)
            continue;
        /* fdatasync: the data and what reading it back needs (the file's new size), not
         * the times fsync would flush as well */
        const char *step = NULL;
        int err = 0;
        if (append_job_refused(run))
            step = APPEND_REFUSED, err = EIO;
        else if (fdatasync(run->file->fd) != 0)
            step = "flush (fdatasync)", err = errno;
        for (struct append_job *j = run; j != after; j = j->next) {
            if (j->step)
                continue;
            if (step)
                append_job_fail(j, step, err);
            else if (j->created) {
                char dir[PATH_MAX];
                dir_of(j->file->path, dir, sizeof dir);
                if (fsync_dir(dir) != 0)
                    append_job_fail(j, "flush the directory of", errno);
            }
        }
    }
    /* back to the loops: one byte per state with jobs done, not one per job */
    pthread_mutex_lock(&writer.mu);
    for (struct append_job *j = first, *next; j; j = next) {
        next = j->next;
        struct appender *a = j->owner;
        j->next = a->done;
        a->done = j;
        if (!a->signaled) {
            a->signaled = 1;
            char byte = 1;
            while (write(a->wake[1], &byte, 1) < 0 && errno == EINTR) {
            }
        }
    }
    pthread_mutex_unlock(&writer.mu);
}

static void *append_writer(void *arg)
{
    (void)arg;
    for (;;) {
        pthread_mutex_lock(&writer.mu);
        while (!writer.head)
            pthread_cond_wait(&writer.queued, &writer.mu);
        struct append_job *first = writer.head;
        writer.head = writer.tail = NULL;
        pthread_mutex_unlock(&writer.mu);
        append_jobs_run(first);
    }
    return NULL;
}

/* Queues `j` for the writer thread (started on first use); 0, or the error number. */
static int append_queue(struct append_job *j)
{
    pthread_mutex_lock(&writer.mu);
    if (!writer.started) {
        pthread_attr_t attr;
        pthread_t thread;
        int rc = pthread_attr_init(&attr);
        if (rc == 0) {
            pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
            rc = pthread_create(&thread, &attr, append_writer, NULL);
            pthread_attr_destroy(&attr);
        }
        if (rc != 0) {
            pthread_mutex_unlock(&writer.mu);
            return rc;
        }
        writer.started = 1;
    }
    j->next = NULL;
    if (writer.tail)
        writer.tail->next = j;
    else
        writer.head = j;
    writer.tail = j;
    pthread_cond_signal(&writer.queued);
    pthread_mutex_unlock(&writer.mu);
    return 0;
}

/* Closes `f` once it is neither the file at its path nor used by a job. */
static void append_file_unused(struct appender *a, struct append_file *f)
{
    if (f->current || f->users > 0)
        return;
    for (struct append_file **p = &a->files; *p; p = &(*p)->next) {
        if (*p == f) {
            *p = f->next;
            break;
        }
    }
    close(f->fd);
    free(f);
}

/* The open file at `path` for an append (opened, and created with `mode` when missing, if
 * the one kept is not the file the path names now); NULL with *step and errno set. */
static struct append_file *append_file_at(struct appender *a, const char *path, mode_t mode,
                                          int *created, const char **step)
{
    struct stat st;
    int named = stat(path, &st) == 0;
    struct append_file *f = NULL;
    for (struct append_file **p = &a->files; *p; p = &(*p)->next) {
        if ((*p)->current && strcmp((*p)->path, path) == 0) {
            f = *p;
            *p = f->next; /* to the front: the most recently used */
            break;
        }
    }
    if (f && named && f->dev == st.st_dev && f->ino == st.st_ino) {
        f->next = a->files;
        a->files = f;
        *created = 0;
        return f;
    }
    if (f) { /* the path names another file now (replaced by a rename, deleted) */
        f->next = a->files;
        a->files = f;
        f->current = 0;
        append_file_unused(a, f);
    }
    *created = 1;
    /* (read as well: append_kept with a reserve looks for another writer's bytes) */
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST) {
        *created = 0;
        fd = open(path, O_RDWR | O_APPEND | O_CLOEXEC);
    }
    *step = "open";
    if (fd < 0)
        return NULL;
    *step = "set the mode of";
    if (!*created || fchmod(fd, mode) == 0) { /* the umask does not narrow it */
        *step = "stat";
        if (fstat(fd, &st) == 0)
            *step = NULL;
    }
    f = *step ? NULL : calloc(1, sizeof *f);
    if (!f) {
        int saved = *step ? errno : ENOMEM;
        if (!*step)
            *step = "append to";
        close(fd);
        errno = saved;
        return NULL;
    }
    f->fd = fd;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->current = 1;
    snprintf(f->path, sizeof f->path, "%s", path);
    f->next = a->files;
    a->files = f;
    /* keep a few: close the least recently used beyond them */
    int kept = 0;
    for (struct append_file *x = a->files, *next; x; x = next) {
        next = x->next;
        if (x->current && x->users == 0 && ++kept > APPEND_FILES_KEPT) {
            x->current = 0;
            append_file_unused(a, x);
        }
    }
    return f;
}

static void append_finished(fo_watch *w, short revents)
{
    (void)revents;
    struct appender *a = w->data;
    char buf[64];
    while (read(a->wake[0], buf, sizeof buf) > 0) {
    }
    pthread_mutex_lock(&writer.mu);
    struct append_job *done = a->done, *ordered = NULL;
    a->done = NULL;
    a->signaled = 0;
    pthread_mutex_unlock(&writer.mu);
    for (struct append_job *j = done, *next; j; j = next) { /* back to queue order */
        next = j->next;
        j->next = ordered;
        ordered = j;
    }
    for (struct append_job *j = ordered, *next; j; j = next) {
        next = j->next;
        lua_State *co = fo_loop_thread(a->loop, j->ref);
        if (j->step) {
            lua_pushboolean(co, 0);
            lua_pushfstring(co, "fo.fs.append_async: cannot %s '%s': %s", j->step, j->file->path,
                            strerror(j->err));
        } else {
            lua_pushboolean(co, 1);
            lua_pushinteger(co, (lua_Integer)j->size);
        }
        fo_loop_ready(a->loop, j->ref, 2);
        fo_loop_release(a->loop);
        j->file->users--;
        append_file_unused(a, j->file);
        free(j->data);
        free(j);
        if (--a->pending == 0)
            fo_loop_remove_watch(a->loop, &a->watch);
    }
}

#define APPENDER_KEY "fo.fs.appender"

/* At the state's close: the files are closed, unless jobs are still out (the process is
 * exiting under them: the writer may still use them). */
static int appender_gc(lua_State *L)
{
    struct appender **box = lua_touserdata(L, 1);
    struct appender *a = *box;
    if (!a || a->pending > 0)
        return 0;
    for (struct append_file *f = a->files, *next; f; f = next) {
        next = f->next;
        close(f->fd);
        free(f);
    }
    close(a->wake[0]);
    close(a->wake[1]);
    free(a);
    *box = NULL;
    return 0;
}

/* L's appender, made at the first append. */
static struct appender *appender_of(lua_State *L, fo_loop *loop)
{
    if (lua_getfield(L, LUA_REGISTRYINDEX, APPENDER_KEY) == LUA_TUSERDATA) {
        struct appender *a = *(struct appender **)lua_touserdata(L, -1);
        lua_pop(L, 1);
        return a;
    }
    lua_pop(L, 1);
    struct appender **box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = NULL;
    struct appender *a = calloc(1, sizeof *a);
    if (!a || pipe(a->wake) != 0) {
        int saved = a ? errno : ENOMEM;
        free(a);
        return luaL_error(L, "fo.fs.append_async: cannot make its channel: %s", strerror(saved)),
               NULL;
    }
    for (int i = 0; i < 2; i++) {
        fcntl(a->wake[i], F_SETFD, FD_CLOEXEC);
        fcntl(a->wake[i], F_SETFL, O_NONBLOCK); /* a full pipe has told the loop already */
    }
    a->loop = loop;
    a->watch = (fo_watch){
        .fd = a->wake[0], .events = POLLIN, .keeps_alive = 1, .ready = append_finished, .data = a};
    *box = a;
    lua_newtable(L);
    lua_pushcfunction(L, appender_gc);
    lua_setfield(L, -2, "__gc");
    lua_setmetatable(L, -2);
    lua_setfield(L, LUA_REGISTRYINDEX, APPENDER_KEY);
    return a;
}

static int append_resumed(lua_State *L, int status, lua_KContext ctx)
{
    (void)status;
    (void)ctx;
    if (!lua_toboolean(L, -2))
        return lua_error(L);
    return 1;
}

/* fo.fs.append_async(path, data [, mode]) → size: fo.fs.append from a task, the write and
 * fsync done on a thread while the task waits and the others run. Same guarantees and
 * errors. */
static int fs_append_async(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *data = luaL_checklstring(L, 2, &n);
    mode_t mode = check_mode(L, 3, 0600);
    fo_loop_check_task(L);
    fo_loop *loop = fo_loop_of(L);
    if (strlen(path) >= PATH_MAX)
        return luaL_error(L, "fo.fs.append_async: path too long: '%s'", path);
    struct appender *a = appender_of(L, loop);
    struct append_job *j = calloc(1, sizeof *j);
    char *copy = malloc(n ? n : 1);
    if (!j || !copy) {
        free(copy);
        free(j);
        return luaL_error(L, "fo.fs.append_async: cannot append to '%s': %s", path,
                          strerror(ENOMEM));
    }
    const char *step = NULL;
    struct append_file *f = append_file_at(a, path, mode, &j->created, &step);
    if (!f || f->tail_known) {
        int saved = f ? EINVAL : errno;
        free(copy);
        free(j);
        if (f)
            return luaL_error(L,
                              "fo.fs.append_async: '%s' keeps a reserve of zeros "
                              "(fo.fs.append_kept): append to it with append_kept",
                              path);
        return luaL_error(L, "fo.fs.append_async: cannot %s '%s': %s", step, path, strerror(saved));
    }
    memcpy(copy, data, n);
    j->owner = a;
    j->file = f;
    j->data = copy;
    j->n = n;
    f->users++;
    int rc = append_queue(j);
    if (rc != 0) {
        f->users--;
        free(copy);
        free(j);
        append_file_unused(a, f);
        return luaL_error(L, "fo.fs.append_async: cannot start a thread: %s", strerror(rc));
    }
    if (a->pending++ == 0)
        fo_loop_add_watch(loop, &a->watch);
    j->ref = fo_loop_park(L);
    fo_loop_hold(loop);
    lua_settop(L, 0);
    return fo_loop_yield(L, 0, append_resumed);
}

/* Where the data of the file open as `fd` (size `size`) ends: after its last byte that is not
 * NUL, read backwards; -1 with errno set. */
static long long data_end(int fd, long long size)
{
    char buf[1 << 13]; /* (on the stack: the loops of two threads may both look) */
    long long pos = size;
    while (pos > 0) {
        size_t k = pos < (long long)sizeof buf ? (size_t)pos : sizeof buf;
        pos -= (long long)k;
        ssize_t got = pread(fd, buf, k, pos);
        if (got != (ssize_t)k) {
            if (got >= 0)
                errno = EIO;
            return -1;
        }
        for (size_t i = k; i > 0; i--)
            if (buf[i - 1] != 0)
                return pos + (long long)i;
    }
    return 0;
}

/* Writes n bytes of data at `at`; 0, or -1 with errno set. */
static int pwrite_all(int fd, const char *data, size_t n, long long at)
{
    while (n > 0) {
        ssize_t w = pwrite(fd, data, n, (off_t)at);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        data += w;
        n -= (size_t)w;
        at += w;
    }
    return 0;
}

/* Whether another writer appended to f's file since f's last append: a size f did not leave,
 * or a byte that is not zero where f's data ends. (With a reserve an append overwrites zeros,
 * so another's record leaves the size as it was.) */
static int foreign_bytes(const struct append_file *f)
{
    struct stat st;
    char c = 0;
    if (fstat(f->fd, &st) != 0 || (long long)st.st_size != f->zeros_to)
        return 1;
    return f->end < f->zeros_to && (pread(f->fd, &c, 1, (off_t)f->end) != 1 || c != 0);
}

/* Appends `n` bytes at the end of f's data, the file kept `reserve` zero bytes longer than
 * its data: zeros written ahead, so that the flush of an append to them changes no size and
 * no extent (fdatasync writes the data alone, and waits for no journal commit). The caller
 * holds the file's flock: another process appending the same way finds the end of the data
 * again (foreign_bytes), and no two write at one place. Returns the step that failed, or
 * NULL. */
static const char *append_reserved(struct append_file *f, const char *data, size_t n,
                                   long long reserve)
{
    if (f->tail_known && foreign_bytes(f))
        f->tail_known = 0;
    if (!f->tail_known) {
        struct stat st;
        if (fstat(f->fd, &st) != 0)
            return "stat";
        long long end = data_end(f->fd, (long long)st.st_size);
        if (end < 0)
            return "read the end of";
        int flags = fcntl(f->fd, F_GETFL);
        if (flags < 0 || fcntl(f->fd, F_SETFL, flags & ~O_APPEND) != 0)
            return "open for writing at its end";
        f->end = end;
        f->zeros_to = (long long)st.st_size;
        f->tail_known = 1;
    }
    if (f->end + (long long)n > f->zeros_to) {
        static const char zeros[1 << 16];
        long long to = f->end + (long long)n + reserve;
        for (long long at = f->zeros_to; at < to;) {
            size_t k = to - at < (long long)sizeof zeros ? (size_t)(to - at) : sizeof zeros;
            if (pwrite_all(f->fd, zeros, k, at) != 0)
                return "reserve space in";
            at += (long long)k;
        }
        f->zeros_to = to;
    }
    if (pwrite_all(f->fd, data, n, f->end) != 0)
        return "write";
    f->end += (long long)n;
    return NULL;
}

/* fo.fs.append_kept(path, data [, mode [, reserve]]) → size: fo.fs.append on the calling
 * thread, to the file append_async keeps open (no open, fchmod and close per call; reopened
 * when the path names another file), flushed with fdatasync. For a log that a task makes
 * durable before it answers, many times a second (the simulator's): handing the flush to the
 * writer thread costs two thread wake-ups and more turns of the loop per flush, which on a
 * virtual machine cost more CPU and time than the flush itself (docs/simulator.md, "State
 * file"). With `reserve` (bytes), the file is kept that many zero bytes longer than its data
 * (append_reserved): an append overwrites zeros, and its flush commits no new size; `size` is
 * then where the data ends, and a reader must drop the zeros at the end (and take a record
 * with zeros in it for a torn one); data must not end with a zero byte (a record ends with
 * its newline). Processes appending so to one file take turns (flock) and each writes after
 * the other's data; the size answered then counts the other's too. Once an append to a file failed,
 * the next ones to that file fail too (no record lands after one that may be torn); a new file at
 * the path is appended to again. Not with append_async on the same file: the two do not wait for
 * each other (and a file with a reserve is refused). */
static int fs_append_kept(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    size_t n;
    const char *data = luaL_checklstring(L, 2, &n);
    mode_t mode = check_mode(L, 3, 0600);
    lua_Integer reserve = luaL_optinteger(L, 4, 0);
    luaL_argcheck(L, reserve >= 0 && reserve <= ((lua_Integer)1 << 30), 4, "reserve out of range");
    if (strlen(path) >= PATH_MAX)
        return luaL_error(L, "fo.fs.append_kept: path too long: '%s'", path);
    struct appender *a = appender_of(L, fo_loop_of(L));
    int created = 0;
    const char *step = NULL;
    struct append_file *f = append_file_at(a, path, mode, &created, &step);
    if (!f)
        return luaL_error(L, "fo.fs.append_kept: cannot %s '%s': %s", step, path, strerror(errno));
    struct stat st;
    int err = 0;
    if (f->failed)
        step = "append (an earlier append to it failed) to", err = EIO;
    else if (reserve > 0 || f->tail_known) {
        /* (O_APPEND cannot place these writes: the lock keeps another process's apart) */
        if (flock(f->fd, LOCK_EX) != 0)
            step = "lock", err = errno;
        else {
            if ((step = append_reserved(f, data, n, reserve)))
                err = errno;
            flock(f->fd, LOCK_UN);
        }
        if (!step && fdatasync(f->fd) != 0)
            step = "flush (fdatasync)", err = errno;
        st.st_size = (off_t)f->end;
    } else if (write_all(f->fd, data, n) != 0)
        step = "write", err = errno;
    else if (fdatasync(f->fd) != 0)
        step = "flush (fdatasync)", err = errno;
    else if (fstat(f->fd, &st) != 0)
        step = "stat", err = errno;
    if (step) {
        f->failed = 1;
        return luaL_error(L, "fo.fs.append_kept: cannot %s '%s': %s", step, path, strerror(err));
    }
    if (created) {
        char dir[PATH_MAX];
        dir_of(path, dir, sizeof dir);
        if (fsync_dir(dir) != 0)
            return luaL_error(L,
                              "fo.fs.append_kept: created '%s' but cannot flush its directory "
                              "'%s': %s",
                              path, dir, strerror(errno));
    }
    lua_pushinteger(L, (lua_Integer)st.st_size);
    return 1;
}

/* fo.fs.mkdir_p(path [, mode]) → true: creates the directory and missing parents
 * (mode default 0700, for the new ones only); an existing directory is fine. */
static int fs_mkdir_p(lua_State *L)
{
    size_t n;
    const char *path = luaL_checklstring(L, 1, &n);
    mode_t mode = check_mode(L, 2, 0700);
    char buf[PATH_MAX];
    if (n == 0 || n >= sizeof buf)
        return luaL_argerror(L, 1, n == 0 ? "empty path" : "path too long");
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        struct stat st;
        if (mkdir(buf, mode) != 0) {
            int saved = errno;
            if (saved != EEXIST || stat(buf, &st) != 0 || !S_ISDIR(st.st_mode))
                return luaL_error(L, "fo.fs.mkdir_p: cannot create '%s' (making '%s'): %s", buf,
                                  path,
                                  saved == EEXIST ? "a file of that name exists" : strerror(saved));
        }
        *p = c;
        if (c == '\0')
            break;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* fo.fs.exists(path) → true when something (file, directory, ...) is there. */
static int fs_exists(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    lua_pushboolean(L, stat(path, &st) == 0);
    return 1;
}

/* fo.fs.listdir(path) → the names in a directory (without "." and ".."), unordered, or nil
 * and a message (liolib style) when it cannot be read. */
static int fs_listdir(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    DIR *d = opendir(path);
    if (!d) {
        int saved = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(saved));
        return 2;
    }
    lua_newtable(L);
    lua_Integer n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        lua_pushstring(L, e->d_name);
        lua_rawseti(L, -2, ++n);
    }
    closedir(d);
    return 1;
}

/* fo.fs.realpath(path) → the absolute path with symbolic links, "." and ".." resolved, or
 * nil and a message (liolib style) when it does not exist or cannot be read. */
static int fs_realpath(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    char *abs = realpath(path, NULL);
    if (!abs) {
        int saved = errno;
        lua_pushnil(L);
        lua_pushfstring(L, "%s: %s", path, strerror(saved));
        return 2;
    }
    lua_pushstring(L, abs);
    free(abs);
    return 1;
}

/* mode(path) → the permission bits of the file (an integer, e.g. 384 for 0600), or nil when
 * it does not exist. Key files are refused when others can read them. */
static int fs_mode(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    struct stat st;
    if (stat(path, &st) != 0) {
        luaL_pushfail(L);
        return 1;
    }
    lua_pushinteger(L, (lua_Integer)(st.st_mode & 07777));
    return 1;
}

/* The descriptor of argument 1: a Lua file (not closed) or a descriptor number. */
static int check_fd(lua_State *L)
{
    luaL_Stream *s = (luaL_Stream *)luaL_testudata(L, 1, LUA_FILEHANDLE);
    if (s) {
        luaL_argcheck(L, s->closef != NULL, 1, "attempt to use a closed file");
        return fileno(s->f);
    }
    if (lua_type(L, 1) == LUA_TNUMBER) {
        lua_Integer n = luaL_checkinteger(L, 1);
        luaL_argcheck(L, n >= INT_MIN && n <= INT_MAX, 1, "descriptor out of range");
        return (int)n;
    }
    return luaL_typeerror(L, 1, "file or descriptor");
}

/* fo.fs.isatty(f) → true when f, a Lua file (io.stdin) or a descriptor number, is a
 * terminal; false otherwise (a pipe, a file, an invalid descriptor). */
static int fs_isatty(lua_State *L)
{
    int fd = check_fd(L);
    lua_pushboolean(L, fd >= 0 && isatty(fd));
    return 1;
}

/* fo.fs.termsize(f) → columns, rows of the terminal f (a Lua file or a descriptor), or nil
 * when f is no terminal or the size is unknown (0). Cheap: asked again on every redraw, so
 * a resized window is followed without a SIGWINCH handler. */
static int fs_termsize(lua_State *L)
{
    int fd = check_fd(L);
    struct winsize ws;
    if (fd < 0 || ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, ws.ws_col);
    lua_pushinteger(L, ws.ws_row);
    return 2;
}

/* fo.fs.read_hidden(f, prompt) → the next line of terminal f (a Lua file, e.g. io.stdin),
 * read with echo off, as getpass does (an MFA code or a passphrase is not left on the
 * screen), or nil at end of file. Echo goes off before the prompt is written to stderr, so
 * nothing typed after the prompt shows; the terminal's settings are restored (without
 * discarding input) before returning. */
static int fs_read_hidden(lua_State *L)
{
    luaL_Stream *s = (luaL_Stream *)luaL_checkudata(L, 1, LUA_FILEHANDLE);
    luaL_argcheck(L, s->closef != NULL, 1, "attempt to use a closed file");
    const char *prompt = luaL_optstring(L, 2, "");
    int fd = fileno(s->f);
    struct termios old, quiet;
    int restore = tcgetattr(fd, &old) == 0;
    if (restore) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        quiet.c_lflag |= ECHONL; /* the user's Enter still ends the line on screen */
        restore = tcsetattr(fd, TCSANOW, &quiet) == 0;
    }
    fputs(prompt, stderr);
    fflush(stderr);
    char line[1024];
    char *got = fgets(line, sizeof line, s->f);
    if (restore)
        tcsetattr(fd, TCSANOW, &old);
    if (!got) {
        lua_pushnil(L);
        return 1;
    }
    line[strcspn(line, "\r\n")] = '\0';
    lua_pushstring(L, line);
    return 1;
}

static const luaL_Reg fs_functions[] = {
    {"write_atomic", fs_write_atomic},
    {"append", fs_append},
    {"append_async", fs_append_async},
    {"append_kept", fs_append_kept},
    {"mkdir_p", fs_mkdir_p},
    {"exists", fs_exists},
    {"realpath", fs_realpath},
    {"listdir", fs_listdir},
    {"mode", fs_mode},
    {"isatty", fs_isatty},
    {"termsize", fs_termsize},
    {"read_hidden", fs_read_hidden},
    {"lock", fo_fs_lock},
    {NULL, NULL},
};

int luaopen_fo_fs(lua_State *L)
{
    luaL_newlib(L, fs_functions);
    return 1;
}
