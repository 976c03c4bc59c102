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
#include <sys/ioctl.h>
#include <sys/stat.h>
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
 * scheduled at once. Jobs run in the order they were queued, and those queued while the
 * writer was busy share an fsync. */
struct append_job {
    fo_loop *loop;
    int ref;
    int fd;
    int created;
    char *data;
    size_t n;
    char path[PATH_MAX];
    int done[2]; /* the writer writes a byte to done[1] when it has finished the job */
    fo_watch watch;
    struct append_job *next; /* in the writer's queue */
    dev_t dev;               /* the file's identity, to refuse appends after a failed one */
    ino_t ino;
    const char *step; /* what failed, or NULL */
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
    return failed_file.any && failed_file.dev == j->dev && failed_file.ino == j->ino;
}

static void append_job_fail(struct append_job *j, const char *step, int err)
{
    j->step = step;
    j->err = err;
    failed_file.any = 1;
    failed_file.dev = j->dev;
    failed_file.ino = j->ino;
}

/* Runs the jobs `first`.. (in queue order): writes them all, then makes each durable —
 * the appends queued while the writer was busy share one fsync (the first fsync of a file
 * flushes them all; the others find nothing left to do). */
static void append_jobs_run(struct append_job *first)
{
    for (struct append_job *j = first; j; j = j->next) {
        struct stat st;
        if (append_job_refused(j))
            append_job_fail(j, "append (an earlier append to it failed) to", EIO);
        else if (write_all(j->fd, j->data, j->n) != 0)
            append_job_fail(j, "write", errno);
        else if (fstat(j->fd, &st) != 0)
            append_job_fail(j, "stat", errno);
        else
            j->size = (long long)st.st_size;
    }
    for (struct append_job *j = first; j; j = j->next) {
        if (!j->step && append_job_refused(j))
            append_job_fail(j, "append (an earlier append to it failed) to", EIO);
        /* fdatasync: the data and what reading it back needs (the file's new size), not
         * the times fsync would flush as well */
        else if (!j->step && fdatasync(j->fd) != 0)
            append_job_fail(j, "flush (fdatasync)", errno);
        if (close(j->fd) != 0 && !j->step)
            append_job_fail(j, "close", errno);
        if (!j->step && j->created) {
            char dir[PATH_MAX];
            dir_of(j->path, dir, sizeof dir);
            if (fsync_dir(dir) != 0)
                append_job_fail(j, "flush the directory of", errno);
        }
    }
    for (struct append_job *j = first, *next; j; j = next) {
        next = j->next; /* j is the loop's again once it is told */
        char byte = 1;
        while (write(j->done[1], &byte, 1) < 0 && errno == EINTR) {
        }
    }
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

static void append_finished(fo_watch *w, short revents)
{
    (void)revents;
    struct append_job *j = w->data;
    fo_loop_remove_watch(j->loop, &j->watch);
    close(j->done[0]);
    close(j->done[1]);
    lua_State *co = fo_loop_thread(j->loop, j->ref);
    if (j->step) {
        lua_pushboolean(co, 0);
        lua_pushfstring(co, "fo.fs.append_async: cannot %s '%s': %s", j->step, j->path,
                        strerror(j->err));
    } else {
        lua_pushboolean(co, 1);
        lua_pushinteger(co, (lua_Integer)j->size);
    }
    fo_loop_ready(j->loop, j->ref, 2);
    fo_loop_release(j->loop);
    free(j->data);
    free(j);
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
    int created = 1;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0 && errno == EEXIST) {
        created = 0;
        fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
    }
    if (fd < 0)
        return luaL_error(L, "fo.fs.append_async: cannot open '%s': %s", path, strerror(errno));
    if (created && fchmod(fd, mode) != 0) { /* the umask does not narrow it */
        int saved = errno;
        close(fd);
        return luaL_error(L, "fo.fs.append_async: cannot set the mode of '%s': %s", path,
                          strerror(saved));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int saved = errno;
        close(fd);
        return luaL_error(L, "fo.fs.append_async: cannot stat '%s': %s", path, strerror(saved));
    }
    struct append_job *j = calloc(1, sizeof *j);
    char *copy = malloc(n ? n : 1);
    if (!j || !copy || pipe(j->done) != 0) {
        int saved = j && copy ? errno : ENOMEM;
        free(copy);
        free(j);
        close(fd);
        return luaL_error(L, "fo.fs.append_async: cannot append to '%s': %s", path,
                          strerror(saved));
    }
    fcntl(j->done[0], F_SETFD, FD_CLOEXEC);
    fcntl(j->done[1], F_SETFD, FD_CLOEXEC);
    memcpy(copy, data, n);
    j->loop = loop;
    j->fd = fd;
    j->dev = st.st_dev;
    j->ino = st.st_ino;
    j->created = created;
    j->data = copy;
    j->n = n;
    snprintf(j->path, sizeof j->path, "%s", path);
    j->watch = (fo_watch){
        .fd = j->done[0], .events = POLLIN, .keeps_alive = 1, .ready = append_finished, .data = j};
    int rc = append_queue(j);
    if (rc != 0) {
        close(j->done[0]);
        close(j->done[1]);
        close(fd);
        free(copy);
        free(j);
        return luaL_error(L, "fo.fs.append_async: cannot start a thread: %s", strerror(rc));
    }
    fo_loop_add_watch(loop, &j->watch);
    j->ref = fo_loop_park(L);
    fo_loop_hold(loop);
    lua_settop(L, 0);
    return fo_loop_yield(L, 0, append_resumed);
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
