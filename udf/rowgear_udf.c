//go:build ignore

// (The line above keeps the go tool from treating this directory as a cgo
// package: this file is built by the Makefile, not by go build.)

/*
 * rowgear_udf.c - Gearman client functions (UDFs) for MariaDB and MySQL.
 *
 * Triggers call gman_do_background() to queue a background job carrying a
 * row-change event, or, with the outbox, rowgear_ring() to wake its relay
 * without ever waiting (see its section below). See README.md in this
 * directory for the SQL interface, the strict/lenient failure patterns, the
 * timeout and the build.
 *
 * Design notes:
 *  - One connection per server thread and server, kept in a thread-specific
 *    slot and reused across calls and statements. It is
 *    recreated when the global server list or timeout changes (a generation
 *    counter), after any failure, and freed when the thread ends (pthread key
 *    destructor) or when the library is unloaded (all clients are on a list).
 *  - Failures return NULL through *is_null, never through *error: *error
 *    would turn this row and every later row of the statement into NULL with
 *    no way for the caller to tell which rows failed.
 *  - Every wait on gearmand is bounded by the timeout (milliseconds), plus
 *    an allowance per MiB of workload (a large row needs longer to send).
 *  - Security: MariaDB has no EXECUTE privilege for UDFs, so every SQL
 *    account can call these functions. Nothing an SQL call does may change
 *    what other sessions' triggers do: the server list, the timeout and the
 *    function allowlist come from mysqld's environment at library load and
 *    are read-only from SQL; the per-call server list is off unless the
 *    environment allows it; only function names matching the allowlist
 *    (row-event functions by default) are submitted.
 */
/* getaddrinfo_a (glibc >= 2.34 has it in libc itself) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libgearman-1.0/gearman.h>
#include <mysql.h>
#include <mysql_version.h>

/*
 * The init functions return "failed?": bool in MySQL 8 (which removed
 * my_bool), char in MariaDB and older MySQL. The is_null/error flags are
 * char-sized in both (unsigned char in MySQL 8: same ABI). A name of our own
 * keeps one source for both.
 */
#if !defined(MARIADB_BASE_VERSION) && defined(MYSQL_VERSION_ID) && MYSQL_VERSION_ID >= 80000
typedef bool rg_bool;
#else
typedef char rg_bool;
#endif

#define RG_API __attribute__((visibility("default")))

#define DEFAULT_SERVERS "127.0.0.1:4730"
#define DEFAULT_PORT 4730
#define DEFAULT_TIMEOUT_MS 1000
#define MAX_TIMEOUT_MS 3600000L
#define DEFAULT_MS_PER_MIB 1000
#define DEFAULT_MAX_WORKLOAD (16L << 20)
#define MAX_MAX_WORKLOAD (1L << 30)
/* Row-event functions of any namespace: <namespace>.<Model>.<op>. */
#define DEFAULT_FUNCTIONS "*.*.insert,*.*.update,*.*.delete"
#define MAX_PATTERNS 64
#define MAX_SERVERS_LEN 4096
#define ERRBUF_LEN 1024
#define LOG_INTERVAL_S 10
#define MAX_SERVERS 16

/* ---------------------------------------------------------------- globals */

/*
 * The settings, read from mysqld's environment when the library is loaded
 * (first call after CREATE FUNCTION or server start) and fixed until it is
 * unloaded: no SQL call changes them.
 */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static bool g_inited;                   /* guarded by g_lock */
static char *g_servers;                 /* ROWGEAR_GEARMAN_SERVERS, as given */
static char g_servers_error[ERRBUF_LEN]; /* non-empty: the list is invalid, why */
static int g_timeout_ms;                /* ROWGEAR_GEARMAN_TIMEOUT_MS */
static int g_ms_per_mib;                /* ROWGEAR_GEARMAN_TIMEOUT_MS_PER_MIB */
static long g_max_workload;             /* ROWGEAR_UDF_MAX_WORKLOAD_BYTES */
static bool g_servers_arg;              /* ROWGEAR_UDF_ALLOW_SERVERS_ARG=1 */
static char *g_functions;               /* ROWGEAR_UDF_FUNCTIONS, as given */
static char *g_patterns[MAX_PATTERNS];  /* its patterns, '.' turned into '/' */
static int g_npatterns;                 /* -1: the allowlist is invalid */
static unsigned long g_gen = 1;         /* bumped at each load */

static unsigned long long g_failures; /* atomic */

static pthread_mutex_t g_log_lock = PTHREAD_MUTEX_INITIALIZER;
static time_t g_log_last;
static int g_log_interval = LOG_INTERVAL_S; /* ROWGEAR_UDF_LOG_INTERVAL_S; atomic */
static unsigned long g_log_suppressed;

static pthread_once_t g_key_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_key;
static bool g_key_ok;

enum prio { PRIO_NORMAL, PRIO_HIGH, PRIO_LOW };

/*
 * The clients for one server list: one libgearman client (one connection)
 * per server, created on first use, so that submit() can fail over from one
 * server to the next itself (libgearman's non-blocking mode does not).
 */
struct conn {
	char *servers;     /* the list it was built for */
	unsigned long gen; /* global generation it was built for */
	int timeout_ms;    /* timeout it was built with */
	int n;             /* number of servers */
	int next;          /* server to try first: the last one that worked */
	char *server[MAX_SERVERS]; /* "host:port", for messages */
	char *host[MAX_SERVERS];
	in_port_t port[MAX_SERVERS];
	int sock[MAX_SERVERS];              /* the connection's socket + 1; 0: none */
	struct lookup *lookup[MAX_SERVERS]; /* a name lookup under way */
};

/*
 * An asynchronous name lookup (glibc's getaddrinfo_a). It must stay at one
 * address until glibc is done with it, so it is allocated on its own.
 */
struct lookup {
	struct gaicb cb;
	struct addrinfo hints;
	char *name;
};

/*
 * rowgear_ring's connections for one server list: its own sockets, never the
 * submits' (a ring does not wait for JOB_CREATED, so the answers it leaves
 * on the socket would be taken for a submit's). c.sock[i] is the socket + 1,
 * c.lookup is unused (names come from the process-wide cache).
 */
struct ring {
	struct conn c;
	bool connecting[MAX_SERVERS];   /* a non-blocking connect in progress on c.sock[i] */
	double since[MAX_SERVERS];      /* when that connect started (monotonic ms) */
	double retry_at[MAX_SERVERS];   /* no new connect before this, after a failure */
	int fail[MAX_SERVERS];          /* why the last one failed: errno, RING_EOF, RING_SLOW */
};

/* Per server thread state. */
struct tstate {
	struct conn global;   /* the global server list */
	struct conn override; /* the last per-call server list */
	struct ring ring_global;   /* rowgear_ring's, global list */
	struct ring ring_override; /* rowgear_ring's, its last per-call list */
	bool has_error;
	char last_error[ERRBUF_LEN];
	struct tstate *prev, *next;
};

static struct tstate *g_states; /* all live states; guarded by g_lock */

static int servers_split(const char *servers, struct conn *c, char *err, size_t errlen);
static void conn_reset(struct conn *c);
static void names_free(void);

/* A number from the environment, or def (logged) when unset or out of range. */
static long env_long(const char *name, long def, long lo, long hi)
{
	const char *t = getenv(name);
	if (!t || !*t)
		return def;
	char *end;
	errno = 0;
	long v = strtol(t, &end, 10);
	if (errno == 0 && *end == '\0' && v >= lo && v <= hi)
		return v;
	fprintf(stderr, "rowgear_udf: ignoring %s=%s (want %ld..%ld); using %ld\n", name, t, lo, hi, def);
	return def;
}

/* An invalid allowlist allows nothing. */
static void functions_invalid_locked(void)
{
	for (int i = 0; i < g_npatterns; i++)
		free(g_patterns[i]);
	g_npatterns = -1;
}

/* Splits the function allowlist into fnmatch patterns. */
static void functions_init_locked(const char *list)
{
	g_functions = strdup(list);
	g_npatterns = 0;
	if (!g_functions) {
		functions_invalid_locked();
		return;
	}
	for (const char *p = list;;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || len > GEARMAN_FUNCTION_MAX_SIZE || g_npatterns == MAX_PATTERNS) {
			functions_invalid_locked();
			return;
		}
		char *pat = strndup(p, len);
		if (!pat) {
			functions_invalid_locked();
			return;
		}
		for (char *q = pat; *q; q++)
			if (*q == '.')
				*q = '/';
		g_patterns[g_npatterns++] = pat;
		if (!e)
			return;
		p = e + 1;
	}
}

static void init_globals_locked(void)
{
	if (g_inited)
		return;
	g_inited = true;
	g_gen++;
	const char *s = getenv("ROWGEAR_GEARMAN_SERVERS");
	g_servers = strdup(s && *s ? s : DEFAULT_SERVERS);
	g_servers_error[0] = '\0';
	struct conn tmp = {0};
	char err[ERRBUF_LEN];
	if (!g_servers)
		snprintf(g_servers_error, sizeof g_servers_error, "out of memory");
	else if (servers_split(g_servers, &tmp, err, sizeof err) <= 0)
		snprintf(g_servers_error, sizeof g_servers_error, "ROWGEAR_GEARMAN_SERVERS=%.256s: %.512s", g_servers, err);
	conn_reset(&tmp);
	if (g_servers_error[0])
		fprintf(stderr, "rowgear_udf: %s; every submit fails until it is fixed and the library reloaded\n",
			g_servers_error);
	g_timeout_ms = (int)env_long("ROWGEAR_GEARMAN_TIMEOUT_MS", DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS);
	g_ms_per_mib = (int)env_long("ROWGEAR_GEARMAN_TIMEOUT_MS_PER_MIB", DEFAULT_MS_PER_MIB, 0, 60000);
	g_max_workload = env_long("ROWGEAR_UDF_MAX_WORKLOAD_BYTES", DEFAULT_MAX_WORKLOAD, 0, MAX_MAX_WORKLOAD);
	__atomic_store_n(&g_log_interval, (int)env_long("ROWGEAR_UDF_LOG_INTERVAL_S", LOG_INTERVAL_S, 0, 86400),
			 __ATOMIC_RELAXED);
	const char *a = getenv("ROWGEAR_UDF_ALLOW_SERVERS_ARG");
	g_servers_arg = a && strcmp(a, "1") == 0;
	const char *f = getenv("ROWGEAR_UDF_FUNCTIONS");
	functions_init_locked(f && *f ? f : DEFAULT_FUNCTIONS);
	if (g_npatterns < 0)
		fprintf(stderr, "rowgear_udf: ROWGEAR_UDF_FUNCTIONS=%s is not a comma-separated list of patterns; "
			"every submit is refused\n", f);
}

static void free_globals_locked(void)
{
	free(g_servers);
	g_servers = NULL;
	free(g_functions);
	g_functions = NULL;
	for (int i = 0; i < g_npatterns; i++)
		free(g_patterns[i]);
	g_npatterns = 0;
	g_inited = false;
}

/*
 * Snapshot of the global configuration. servers is malloc'd for the caller
 * (NULL with the reason in err when the environment's list is invalid).
 */
static void config_snapshot(char **servers, int *timeout_ms, unsigned long *gen, char *err, size_t errlen)
{
	pthread_mutex_lock(&g_lock);
	init_globals_locked();
	if (servers) {
		*servers = NULL;
		if (g_servers_error[0])
			snprintf(err, errlen, "%s", g_servers_error);
		else if (!(*servers = strdup(g_servers)))
			snprintf(err, errlen, "out of memory");
	}
	if (timeout_ms)
		*timeout_ms = g_timeout_ms;
	if (gen)
		*gen = g_gen;
	pthread_mutex_unlock(&g_lock);
}

/* The limits of one submit: servers argument allowed, deadline scaling, size cap. */
static void config_limits(bool *servers_arg, int *ms_per_mib, long *max_workload)
{
	pthread_mutex_lock(&g_lock);
	init_globals_locked();
	*servers_arg = g_servers_arg;
	*ms_per_mib = g_ms_per_mib;
	*max_workload = g_max_workload;
	pthread_mutex_unlock(&g_lock);
}

/*
 * function_allowed says whether fn matches the allowlist; if not, err says
 * why. '*' stands for any run of characters without a dot.
 */
static bool function_allowed(const char *fn, char *err, size_t errlen)
{
	char name[GEARMAN_FUNCTION_MAX_SIZE + 1];
	bool ok = false;
	snprintf(name, sizeof name, "%s", fn);
	bool slash = strchr(name, '/') != NULL;
	for (char *q = name; *q; q++)
		if (*q == '.')
			*q = '/';
	pthread_mutex_lock(&g_lock);
	init_globals_locked();
	for (int i = 0; !slash && i < g_npatterns; i++)
		if (fnmatch(g_patterns[i], name, FNM_PATHNAME) == 0) {
			ok = true;
			break;
		}
	if (!ok)
		snprintf(err, errlen, "function '%.200s' is not allowed: ROWGEAR_UDF_FUNCTIONS is '%.300s'%s", fn,
			 g_functions ? g_functions : "", g_npatterns < 0 ? " (invalid: no function is allowed)" : "");
	pthread_mutex_unlock(&g_lock);
	return ok;
}

/* ------------------------------------------------------------ thread state */

static void lookup_free(struct lookup *l)
{
	if (!l)
		return;
	/*
	 * One still running can't be freed: glibc's helper thread writes into
	 * it. It is left behind (a few hundred bytes, only when the list
	 * changes or a thread ends while a DNS server does not answer).
	 */
	if (gai_error(&l->cb) == EAI_INPROGRESS && gai_cancel(&l->cb) != EAI_CANCELED)
		return;
	if (l->cb.ar_result)
		freeaddrinfo(l->cb.ar_result);
	free(l->name);
	free(l);
}

static void conn_reset(struct conn *c)
{
	for (int i = 0; i < c->n; i++) {
		lookup_free(c->lookup[i]);
		if (c->sock[i])
			close(c->sock[i] - 1);
		free(c->server[i]);
		free(c->host[i]);
	}
	free(c->servers);
	memset(c, 0, sizeof *c);
}

static void state_free(struct tstate *ts)
{
	conn_reset(&ts->global);
	conn_reset(&ts->override);
	conn_reset(&ts->ring_global.c);
	conn_reset(&ts->ring_override.c);
	free(ts);
}

/* Runs when a server thread ends. */
static void state_destructor(void *p)
{
	struct tstate *ts = p;
	bool mine = false;
	pthread_mutex_lock(&g_lock);
	/* Only free a state still on the list: the unload path may own it. */
	for (struct tstate *x = g_states; x; x = x->next)
		if (x == ts) {
			mine = true;
			break;
		}
	if (mine) {
		if (ts->prev)
			ts->prev->next = ts->next;
		else
			g_states = ts->next;
		if (ts->next)
			ts->next->prev = ts->prev;
	}
	pthread_mutex_unlock(&g_lock);
	if (mine)
		state_free(ts);
}

static void key_init(void)
{
	g_key_ok = pthread_key_create(&g_key, state_destructor) == 0;
}

/*
 * The library is being unloaded (the last function was dropped): stop the
 * key destructor from pointing into unmapped code, and free every client so no
 * socket to gearmand is left behind.
 */
__attribute__((destructor)) static void rowgear_unload(void)
{
	pthread_mutex_lock(&g_lock);
	if (g_key_ok) {
		pthread_key_delete(g_key);
		g_key_ok = false;
	}
	struct tstate *ts = g_states;
	g_states = NULL;
	free_globals_locked();
	pthread_mutex_unlock(&g_lock);
	while (ts) {
		struct tstate *next = ts->next;
		state_free(ts);
		ts = next;
	}
	names_free();
}

static struct tstate *state_get(bool create)
{
	pthread_once(&g_key_once, key_init);
	if (!g_key_ok)
		return NULL;
	struct tstate *ts = pthread_getspecific(g_key);
	if (ts || !create)
		return ts;
	ts = calloc(1, sizeof(*ts));
	if (!ts)
		return NULL;
	if (pthread_setspecific(g_key, ts) != 0) {
		free(ts);
		return NULL;
	}
	pthread_mutex_lock(&g_lock);
	ts->next = g_states;
	if (g_states)
		g_states->prev = ts;
	g_states = ts;
	pthread_mutex_unlock(&g_lock);
	return ts;
}

/* ------------------------------------------------------------ errors, log */

static void log_failure(const char *msg)
{
	time_t now = time(NULL);
	pthread_mutex_lock(&g_log_lock);
	if (g_log_last != 0 && now - g_log_last < __atomic_load_n(&g_log_interval, __ATOMIC_RELAXED)) {
		g_log_suppressed++;
		pthread_mutex_unlock(&g_log_lock);
		return;
	}
	unsigned long suppressed = g_log_suppressed;
	time_t since = g_log_last;
	g_log_suppressed = 0;
	g_log_last = now;
	pthread_mutex_unlock(&g_log_lock);

	struct tm tm;
	char ts[32], prev[32];
	localtime_r(&now, &tm);
	strftime(ts, sizeof ts, "%Y-%m-%d %H:%M:%S", &tm);
	/*
	 * The failures not logged happened between the previous line and this
	 * one, however long ago that was: say so, with both ends.
	 */
	if (suppressed) {
		localtime_r(&since, &tm);
		strftime(prev, sizeof prev, "%H:%M:%S", &tm);
		fprintf(stderr, "%s 0 [Warning] rowgear_udf: %s (and %lu more failures not logged since the line at %s, "
			"%lld s ago; total failures %llu)\n",
			ts, msg, suppressed, prev, (long long)(now - since), __atomic_load_n(&g_failures, __ATOMIC_RELAXED));
	} else
		fprintf(stderr, "%s 0 [Warning] rowgear_udf: %s (total failures %llu)\n",
			ts, msg, __atomic_load_n(&g_failures, __ATOMIC_RELAXED));
	fflush(stderr);
}

/* Records a failure of a submit: last error, counter, error log. */
__attribute__((format(printf, 2, 3)))
static void submit_failed(struct tstate *ts, const char *fmt, ...)
{
	char buf[ERRBUF_LEN];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	__atomic_add_fetch(&g_failures, 1, __ATOMIC_RELAXED);
	if (ts) {
		memcpy(ts->last_error, buf, sizeof buf);
		ts->has_error = true;
	}
	log_failure(buf);
}

/* Records an error of a setter (no counter, no log). */
__attribute__((format(printf, 2, 3)))
static void set_error(struct tstate *ts, const char *fmt, ...)
{
	if (!ts)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(ts->last_error, sizeof ts->last_error, fmt, ap);
	va_end(ap);
	ts->has_error = true;
}

/* ---------------------------------------------------------------- helpers */

/* Copies a UDF string argument into a NUL-terminated buffer. */
static bool arg_cstr(UDF_ARGS *args, unsigned i, char *buf, size_t cap)
{
	if (!args->args[i] || args->lengths[i] >= cap)
		return false;
	memcpy(buf, args->args[i], args->lengths[i]);
	buf[args->lengths[i]] = '\0';
	return true;
}

static bool has_nul(const char *p, size_t n)
{
	return p && memchr(p, '\0', n) != NULL;
}

/*
 * Parses one "host[:port]" or "[ipv6][:port]" entry. The port, when given,
 * must be a number 1..65535: nothing is turned into 4730 but a missing port.
 */
static bool server_parse(const char *s, size_t len, struct conn *c, int i, char *err, size_t errlen)
{
	const char *host = s, *rest;
	size_t hlen;
	if (len > 0 && s[0] == '[') {
		const char *rb = memchr(s, ']', len);
		if (!rb) {
			snprintf(err, errlen, "invalid server '%.*s': '[' without ']'", (int)len, s);
			return false;
		}
		host = s + 1;
		hlen = (size_t)(rb - host);
		rest = rb + 1;
		for (size_t k = 0; k < hlen; k++)
			if (!strchr("0123456789abcdefABCDEF:.", host[k])) {
				snprintf(err, errlen, "invalid server '%.*s': bad IPv6 address", (int)len, s);
				return false;
			}
	} else {
		const char *colon = memchr(s, ':', len);
		hlen = colon ? (size_t)(colon - s) : len;
		rest = s + hlen;
		for (size_t k = 0; k < hlen; k++)
			if (!(host[k] >= 'a' && host[k] <= 'z') && !(host[k] >= 'A' && host[k] <= 'Z') &&
			    !(host[k] >= '0' && host[k] <= '9') && !strchr(".-_", host[k])) {
				snprintf(err, errlen, "invalid server '%.*s': bad character in host name", (int)len, s);
				return false;
			}
	}
	if (hlen == 0) {
		snprintf(err, errlen, "invalid server '%.*s': no host", (int)len, s);
		return false;
	}
	size_t rlen = len - (size_t)(rest - s);
	long port = DEFAULT_PORT;
	if (rlen > 0) {
		if (rest[0] != ':') {
			snprintf(err, errlen, "invalid server '%.*s': want host:port", (int)len, s);
			return false;
		}
		const char *p = rest + 1;
		size_t plen = rlen - 1;
		port = 0;
		for (size_t k = 0; k < plen; k++) {
			if (p[k] < '0' || p[k] > '9' || port > 65535) {
				port = -1;
				break;
			}
			port = port * 10 + (p[k] - '0');
		}
		if (plen == 0 || port < 1 || port > 65535) {
			snprintf(err, errlen, "invalid server '%.*s': port '%.*s' is not a number 1..65535%s", (int)len,
				 s, (int)plen, p,
				 memchr(p, ':', plen) ? " (write IPv6 addresses in brackets: [::1]:4730)" : "");
			return false;
		}
	}
	c->host[i] = strndup(host, hlen);
	c->server[i] = strndup(s, len);
	c->port[i] = (in_port_t)port;
	if (!c->host[i] || !c->server[i]) {
		snprintf(err, errlen, "out of memory");
		return false;
	}
	return true;
}

/*
 * Splits a server list "host:port,host:port" into at most MAX_SERVERS
 * entries of c, checking each; returns their number, or -1 (c reset).
 */
static int servers_split(const char *servers, struct conn *c, char *err, size_t errlen)
{
	int n = 0;
	const char *p = servers;
	if (!*p) {
		snprintf(err, errlen, "empty server list");
		return -1;
	}
	for (;;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (len == 0 || n == MAX_SERVERS) {
			snprintf(err, errlen, len ? "more than %d servers" : "empty entry in server list", MAX_SERVERS);
			goto fail;
		}
		c->n = ++n;
		if (!server_parse(p, len, c, n - 1, err, errlen))
			goto fail;
		if (!e)
			return n;
		p = e + 1;
	}
fail:
	conn_reset(c);
	return -1;
}

/*
 * Makes c the clients for the given server list (NULL: the global one),
 * rebuilt (*rebuilt set) when missing or out of date.
 */
static struct conn *conn_load(struct conn *c, const char *override, bool *rebuilt, char *err, size_t errlen)
{
	char *servers = NULL;
	int timeout_ms;
	unsigned long gen;

	*rebuilt = false;
	config_snapshot(override ? NULL : &servers, &timeout_ms, &gen, err, errlen);
	if (!override && !servers)
		return NULL;
	if (c->n > 0 && c->gen == gen && (!override || strcmp(c->servers, override) == 0)) {
		free(servers);
		return c;
	}
	conn_reset(c);
	if (override)
		servers = strdup(override);
	if (!servers) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (servers_split(servers, c, err, errlen) <= 0) {
		free(servers);
		return NULL;
	}
	c->servers = servers;
	c->gen = gen;
	c->timeout_ms = timeout_ms;
	*rebuilt = true;
	return c;
}

static struct conn *conn_get(struct tstate *ts, const char *override, char *err, size_t errlen)
{
	bool rebuilt;
	return conn_load(override ? &ts->override : &ts->global, override, &rebuilt, err, errlen);
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/*
 * Turns server i's host into a numeric address in addr, waiting for DNS at
 * most until the deadline. A blocking getaddrinfo on a name whose DNS
 * server does not answer (a stopped compose service) held the writer for
 * the resolver's 2 × 5 s whatever our deadline, and left no time for the
 * next server. A lookup that outlives its deadline goes on in the
 * background; the next call takes its answer.
 */
static gearman_return_t conn_resolve(struct conn *c, int i, double deadline, char *addr, size_t addrlen,
				     char *err, size_t errlen)
{
	unsigned char buf[sizeof(struct in6_addr)];
	if (inet_pton(AF_INET, c->host[i], buf) == 1 || inet_pton(AF_INET6, c->host[i], buf) == 1) {
		snprintf(addr, addrlen, "%s", c->host[i]);
		return GEARMAN_SUCCESS;
	}
	struct lookup *l = c->lookup[i];
	if (!l) {
		l = calloc(1, sizeof *l);
		if (!l || !(l->name = strdup(c->host[i]))) {
			free(l);
			snprintf(err, errlen, "out of memory resolving '%.256s'", c->host[i]);
			return GEARMAN_MEMORY_ALLOCATION_FAILURE;
		}
		/*
		 * IPv4 only: with AF_UNSPEC glibc also waits for the AAAA
		 * answer, which a container's DNS forwards upstream (seen
		 * taking over a second in the compose stack). Write IPv6
		 * servers as addresses.
		 */
		l->hints.ai_family = AF_INET;
		l->hints.ai_socktype = SOCK_STREAM;
		l->cb.ar_name = l->name;
		l->cb.ar_request = &l->hints;
		struct gaicb *list[1] = {&l->cb};
		int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
		if (rc != 0) {
			snprintf(err, errlen, "resolving '%.256s': %s", c->host[i], gai_strerror(rc));
			lookup_free(l);
			return GEARMAN_GETADDRINFO;
		}
		c->lookup[i] = l;
	}
	const struct gaicb *wait[1] = {&l->cb};
	while (gai_error(&l->cb) == EAI_INPROGRESS) {
		double left = deadline - now_ms();
		if (left <= 0) {
			snprintf(err, errlen, "resolving '%.256s' took longer than the time left (still trying)",
				 c->host[i]);
			return GEARMAN_TIMEOUT;
		}
		struct timespec ts = {(time_t)(left / 1e3), (long)((left - (double)(time_t)(left / 1e3) * 1e3) * 1e6)};
		(void)gai_suspend(wait, 1, &ts);
	}
	c->lookup[i] = NULL;
	int rc = gai_error(&l->cb);
	struct addrinfo *ai = rc == 0 ? l->cb.ar_result : NULL;
	if (ai)
		rc = getnameinfo(ai->ai_addr, ai->ai_addrlen, addr, (socklen_t)addrlen, NULL, 0, NI_NUMERICHOST);
	else if (rc == 0)
		rc = EAI_NONAME;
	if (rc != 0)
		snprintf(err, errlen, "resolving '%.256s': %s", c->host[i], gai_strerror(rc));
	lookup_free(l);
	return rc == 0 ? GEARMAN_SUCCESS : GEARMAN_GETADDRINFO;
}

/*
 * The connection to gearmand is ours, not libgearman's: libgearman sets
 * SO_LINGER to 10 s on its sockets, so closing one whose peer is gone (a
 * killed gearmand: the EOF it sent, our FIN never acknowledged) blocked the
 * writer for up to 10 s, past any deadline. Our sockets keep the default
 * (close returns at once) and every wait is a poll against the deadline.
 * libgearman still names the error codes.
 */

/* Waits for events on fd until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_fd(int fd, short events, double deadline)
{
	for (;;) {
		double left = deadline - now_ms();
		if (left <= 0)
			return 0;
		struct pollfd p = {.fd = fd, .events = events};
		int n = poll(&p, 1, (int)left + 1);
		if (n > 0)
			return 1; /* readiness or an error: the next call says which */
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

/*
 * Returns the socket of server i, connecting (within the deadline) when
 * there is none or the one kept was closed by gearmand; -1 with *rc and err
 * set otherwise.
 */
static int conn_sock(struct conn *c, int i, double deadline, bool *reused, gearman_return_t *rc, char *err,
		     size_t errlen)
{
	*reused = false;
	if (c->sock[i]) {
		/* gearmand sends nothing unasked: readable means EOF or an error. */
		char b;
		ssize_t n = recv(c->sock[i] - 1, &b, 1, MSG_PEEK | MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			*reused = true;
			return c->sock[i] - 1;
		}
		close(c->sock[i] - 1);
		c->sock[i] = 0;
	}
	char addr[NI_MAXHOST], port[8];
	*rc = conn_resolve(c, i, deadline, addr, sizeof addr, err, errlen);
	if (gearman_failed(*rc))
		return -1;
	snprintf(port, sizeof port, "%u", (unsigned)c->port[i]);
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
	struct addrinfo *ai = NULL;
	int grc = getaddrinfo(addr, port, &hints, &ai);
	if (grc != 0) {
		snprintf(err, errlen, "address '%.256s': %s", addr, gai_strerror(grc));
		*rc = GEARMAN_GETADDRINFO;
		return -1;
	}
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		freeaddrinfo(ai);
		*rc = GEARMAN_ERRNO;
		return -1;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	int e = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0 ? 0 : errno;
	freeaddrinfo(ai);
	if (e == EINPROGRESS) {
		int w = wait_fd(fd, POLLOUT, deadline);
		socklen_t len = sizeof e;
		if (w == 0) {
			snprintf(err, errlen, "connecting to %.256s (%.64s) timed out", c->server[i], addr);
			close(fd);
			*rc = GEARMAN_TIMEOUT;
			return -1;
		}
		if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
			e = errno;
	}
	if (e != 0) {
		snprintf(err, errlen, "Connection to %.256s (%.64s) failed: %s", c->server[i], addr, strerror(e));
		close(fd);
		*rc = GEARMAN_COULD_NOT_CONNECT;
		return -1;
	}
	c->sock[i] = fd + 1;
	return fd;
}

/* Drops a connection after a failure so the next use reconnects from scratch. */
static void conn_discard(struct conn *c, int i)
{
	if (c->sock[i])
		close(c->sock[i] - 1);
	c->sock[i] = 0;
}

/* Sends all of buf before the deadline. */
static gearman_return_t send_all(int fd, const void *buf, size_t len, double deadline, char *err, size_t errlen)
{
	const char *p = buf;
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			snprintf(err, errlen, "lost connection to server during send: %s", strerror(errno));
			return GEARMAN_LOST_CONNECTION;
		}
		if (wait_fd(fd, POLLOUT, deadline) == 0) {
			snprintf(err, errlen, "sending the job timed out");
			return GEARMAN_TIMEOUT;
		}
	}
	return GEARMAN_SUCCESS;
}

/* Reads exactly len bytes before the deadline. */
static gearman_return_t recv_all(int fd, void *buf, size_t len, double deadline, char *err, size_t errlen)
{
	char *p = buf;
	while (len > 0) {
		ssize_t n = recv(fd, p, len, 0);
		if (n > 0) {
			p += n;
			len -= (size_t)n;
			continue;
		}
		if (n == 0) {
			snprintf(err, errlen, "lost connection to server (EOF)");
			return GEARMAN_LOST_CONNECTION;
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			snprintf(err, errlen, "lost connection to server during read: %s", strerror(errno));
			return GEARMAN_LOST_CONNECTION;
		}
		if (wait_fd(fd, POLLIN, deadline) == 0) {
			snprintf(err, errlen, "waiting for gearmand's answer timed out");
			return GEARMAN_TIMEOUT;
		}
	}
	return GEARMAN_SUCCESS;
}

/* Gearman's binary protocol (gearmand's PROTOCOL): a packet is a 4-byte
 * magic, a type and a body size (big-endian 32 bits), then the body, whose
 * arguments are NUL-separated. */
#define REQ_MAGIC "\0REQ"
#define RES_MAGIC "\0RES"
#define REQ_SUBMIT_JOB_BG 18
#define REQ_SUBMIT_JOB_HIGH_BG 32
#define REQ_SUBMIT_JOB_LOW_BG 34
#define RES_JOB_CREATED 8
#define RES_ERROR 19
#define MAX_ANSWER 4096

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
	p[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * A fresh unique key, as libgearman made one when none is given: gearmand's
 * durable queues key jobs by it.
 */
static void new_unique(char *out)
{
	unsigned char b[16] = {0};
	if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
		struct timespec t;
		clock_gettime(CLOCK_REALTIME, &t);
		memcpy(b, &t, sizeof t < sizeof b ? sizeof t : sizeof b);
		b[15] ^= (unsigned char)(uintptr_t)&t;
	}
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40), b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
		 b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}

/*
 * Submits one background job on fd and waits for gearmand's JOB_CREATED,
 * giving up at the deadline. On success the handle is copied into handle
 * (GEARMAN_JOB_HANDLE_SIZE + 1 bytes).
 */
static gearman_return_t submit_one(int fd, enum prio prio, const char *fn, const char *unique, const void *workload,
				   size_t workload_size, double deadline, char *handle, char *err, size_t errlen)
{
	char uuid[37];
	if (!unique) {
		new_unique(uuid);
		unique = uuid;
	}
	unsigned char head[12 + GEARMAN_FUNCTION_MAX_SIZE + 1 + GEARMAN_MAX_UNIQUE_SIZE + 1];
	size_t fl = strlen(fn), ul = strlen(unique);
	memcpy(head, REQ_MAGIC, 4);
	put32(head + 4, prio == PRIO_HIGH ? REQ_SUBMIT_JOB_HIGH_BG
			: prio == PRIO_LOW ? REQ_SUBMIT_JOB_LOW_BG
					   : REQ_SUBMIT_JOB_BG);
	put32(head + 8, (uint32_t)(fl + 1 + ul + 1 + workload_size));
	memcpy(head + 12, fn, fl + 1);
	memcpy(head + 12 + fl + 1, unique, ul + 1);
	gearman_return_t rc = send_all(fd, head, 12 + fl + 1 + ul + 1, deadline, err, errlen);
	if (gearman_success(rc) && workload_size)
		rc = send_all(fd, workload, workload_size, deadline, err, errlen);
	unsigned char ans[12 + MAX_ANSWER + 1];
	if (gearman_success(rc))
		rc = recv_all(fd, ans, 12, deadline, err, errlen);
	if (gearman_failed(rc))
		return rc;
	uint32_t type = get32(ans + 4), size = get32(ans + 8);
	if (memcmp(ans, RES_MAGIC, 4) != 0 || size > MAX_ANSWER) {
		snprintf(err, errlen, "not a gearmand answer (magic %02x%02x%02x%02x, %u bytes)", ans[0], ans[1], ans[2],
			 ans[3], (unsigned)size);
		return GEARMAN_INVALID_MAGIC;
	}
	if ((rc = recv_all(fd, ans + 12, size, deadline, err, errlen)) != GEARMAN_SUCCESS)
		return rc;
	ans[12 + size] = '\0';
	switch (type) {
	case RES_JOB_CREATED: {
		size_t n = size < GEARMAN_JOB_HANDLE_SIZE ? size : GEARMAN_JOB_HANDLE_SIZE;
		if (n == 0) {
			snprintf(err, errlen, "gearmand answered with an empty job handle");
			return GEARMAN_UNKNOWN_STATE;
		}
		memcpy(handle, ans + 12, n);
		handle[n] = '\0';
		return GEARMAN_SUCCESS;
	}
	case RES_ERROR: {
		const char *code = (const char *)ans + 12;
		size_t cl = strnlen(code, size);
		snprintf(err, errlen, "gearmand ERROR %.64s: %.256s", code, cl < size ? code + cl + 1 : "");
		return GEARMAN_SERVER_ERROR;
	}
	default:
		snprintf(err, errlen, "unexpected answer of type %u to a job submission", (unsigned)type);
		return GEARMAN_UNEXPECTED_PACKET;
	}
}

/* ------------------------------------------------------ submit functions */

static rg_bool submit_init(UDF_INIT *initid, UDF_ARGS *args, char *message, const char *name)
{
	if (args->arg_count < 2 || args->arg_count > 4) {
		(void)name;
		snprintf(message, MYSQL_ERRMSG_SIZE, "takes 2 to 4 arguments: function, workload [, unique [, servers]]");
		return 1;
	}
	/* Numbers and other values are passed on as their string form. */
	for (unsigned i = 0; i < args->arg_count; i++)
		args->arg_type[i] = STRING_RESULT;
	initid->maybe_null = 1;
	initid->const_item = 0;
	initid->max_length = GEARMAN_JOB_HANDLE_SIZE;
	return 0;
}

static char *submit(enum prio prio, const char *name, UDF_ARGS *args, char *result,
		    unsigned long *length, char *is_null)
{
	char fn[GEARMAN_FUNCTION_MAX_SIZE + 1];
	char uniq[GEARMAN_MAX_UNIQUE_SIZE];
	char servers[MAX_SERVERS_LEN + 1];
	char err[ERRBUF_LEN];
	const char *unique = NULL;
	const char *override = NULL;

	*is_null = 1;
	*length = 0;
	struct tstate *ts = state_get(true);
	if (!ts) {
		submit_failed(NULL, "%s: out of memory for thread state", name);
		return NULL;
	}
	ts->has_error = false;

	/* function */
	if (!args->args[0]) {
		submit_failed(ts, "%s: function name is NULL", name);
		return NULL;
	}
	if (args->lengths[0] == 0) {
		submit_failed(ts, "%s: function name is empty", name);
		return NULL;
	}
	if (args->lengths[0] > GEARMAN_FUNCTION_MAX_SIZE || has_nul(args->args[0], args->lengths[0])) {
		submit_failed(ts, "%s: function name longer than %d bytes or contains a NUL byte",
			      name, GEARMAN_FUNCTION_MAX_SIZE);
		return NULL;
	}
	arg_cstr(args, 0, fn, sizeof fn);
	if (!function_allowed(fn, err, sizeof err)) {
		submit_failed(ts, "%s: %s", name, err);
		return NULL;
	}
	bool servers_arg;
	int ms_per_mib;
	long max_workload;
	config_limits(&servers_arg, &ms_per_mib, &max_workload);

	/* workload: NULL is refused (a trigger bug), empty is allowed */
	if (!args->args[1]) {
		submit_failed(ts, "%s(%s): workload is NULL", name, fn);
		return NULL;
	}
	const void *workload = args->lengths[1] ? args->args[1] : NULL;
	size_t workload_size = args->lengths[1];
	if (workload_size > (size_t)max_workload) {
		submit_failed(ts, "%s(%s): workload of %lu bytes is over the limit of %ld bytes "
			      "(ROWGEAR_UDF_MAX_WORKLOAD_BYTES in mysqld's environment)",
			      name, fn, (unsigned long)workload_size, max_workload);
		return NULL;
	}

	/* unique: NULL or '' lets libgearman generate a fresh UUID */
	if (args->arg_count >= 3 && args->args[2] && args->lengths[2] > 0) {
		if (args->lengths[2] >= GEARMAN_MAX_UNIQUE_SIZE || has_nul(args->args[2], args->lengths[2])) {
			submit_failed(ts, "%s(%s): unique key must be at most %d bytes without NUL bytes (got %lu bytes)",
				      name, fn, GEARMAN_MAX_UNIQUE_SIZE - 1, args->lengths[2]);
			return NULL;
		}
		arg_cstr(args, 2, uniq, sizeof uniq);
		unique = uniq;
	}

	/* servers: per-call override of the global list */
	if (args->arg_count >= 4 && args->args[3]) {
		if (!servers_arg) {
			submit_failed(ts, "%s(%s): the servers argument is disabled: the server list comes from "
				      "mysqld's environment (ROWGEAR_UDF_ALLOW_SERVERS_ARG=1 enables the argument)",
				      name, fn);
			return NULL;
		}
		if (args->lengths[3] == 0 || args->lengths[3] > MAX_SERVERS_LEN ||
		    has_nul(args->args[3], args->lengths[3])) {
			submit_failed(ts, "%s(%s): servers must be a non-empty 'host:port,...' list of at most %d bytes",
				      name, fn, MAX_SERVERS_LEN);
			return NULL;
		}
		arg_cstr(args, 3, servers, sizeof servers);
		override = servers;
	}

	double start = now_ms();
	struct conn *cn = conn_get(ts, override, err, sizeof err);
	if (!cn) {
		submit_failed(ts, "%s(%.200s): %s", name, fn, err);
		return NULL;
	}
	/*
	 * A large workload needs longer to reach gearmand: the deadline grows
	 * by ms_per_mib per started MiB, so a big row is not refused by a
	 * timeout sized for small ones.
	 */
	long timeout_ms = cn->timeout_ms + (long)((workload_size + (1 << 20) - 1) >> 20) * ms_per_mib;
	double deadline = start + (double)timeout_ms;
	gearman_return_t rc = GEARMAN_UNKNOWN_STATE;
	int tried = 0, first = cn->next, last = first;
	err[0] = '\0';
	/*
	 * Each server in turn, from the last one that worked, until the deadline.
	 * A server gets an equal share of the time left, so one that stalls (a
	 * killed host, a lost connection) leaves time for the next: a timeout
	 * moves on too. A job a timed-out server did create runs twice; the
	 * commit gate lets one copy through.
	 */
	for (int k = 0; k < cn->n && (k == 0 || now_ms() < deadline); k++) {
		int i = (first + k) % cn->n;
		double share = k == cn->n - 1 ? deadline : now_ms() + (deadline - now_ms()) / (cn->n - k);
		last = i;
		tried++;
		for (int attempt = 0; attempt < 2; attempt++) {
			bool reused = false;
			int fd = conn_sock(cn, i, share, &reused, &rc, err, sizeof err);
			if (fd < 0)
				break;
			char handle[GEARMAN_JOB_HANDLE_SIZE + 1];
			rc = submit_one(fd, prio, fn, unique, workload, workload_size, share, handle, err, sizeof err);
			if (gearman_success(rc)) {
				cn->next = i;
				size_t n = strnlen(handle, GEARMAN_JOB_HANDLE_SIZE);
				memcpy(result, handle, n);
				*length = n;
				*is_null = 0;
				return result;
			}
			conn_discard(cn, i);
			cn->next = (i + 1) % cn->n; /* next call starts with another server */
			/*
			 * A reused connection may have been closed by a gearmand that
			 * has since restarted: retry once on a fresh connection, within
			 * the same deadline. Not after a timeout.
			 */
			if (!reused || rc == GEARMAN_TIMEOUT || now_ms() >= share)
				break;
		}
	}
	/*
	 * The server and the code first: a trigger's SIGNAL message may be cut
	 * (MySQL 8: 128 characters), and they are what an operator needs.
	 */
	if (cn->n > 1)
		submit_failed(ts, "gearmand %.256s: %s (tried %d of %d servers, timeout %ld ms): %.400s; in %s(%.200s)",
			      cn->server[last], gearman_strerror(rc), tried, cn->n, timeout_ms, err, name, fn);
	else
		submit_failed(ts, "gearmand %.256s: %s (timeout %ld ms): %.400s; in %s(%.200s)", cn->server[last],
			      gearman_strerror(rc), timeout_ms, err, name, fn);
	return NULL;
}

#define SUBMIT_FUNCS(sqlname, prio)                                                              \
	RG_API rg_bool sqlname##_init(UDF_INIT *initid, UDF_ARGS *args, char *message)            \
	{                                                                                         \
		return submit_init(initid, args, message, #sqlname);                              \
	}                                                                                         \
	RG_API void sqlname##_deinit(UDF_INIT *initid) { (void)initid; }                          \
	RG_API char *sqlname(UDF_INIT *initid, UDF_ARGS *args, char *result, unsigned long *length, \
			     char *is_null, char *error)                                          \
	{                                                                                         \
		(void)initid;                                                                     \
		(void)error;                                                                      \
		return submit(prio, #sqlname, args, result, length, is_null);                    \
	}

SUBMIT_FUNCS(gman_do_background, PRIO_NORMAL)
SUBMIT_FUNCS(gman_do_high_background, PRIO_HIGH)
SUBMIT_FUNCS(gman_do_low_background, PRIO_LOW)

/* ----------------------------------------------------------- rowgear_ring */

/*
 * rowgear_ring(fn [, servers]) is the outbox's doorbell. The trigger has
 * already written the event into the outbox in the writer's transaction;
 * the ring only tells a relay to look now rather than at its next poll. So
 * it must never make the writer wait: every step below is non-blocking, and
 * whatever would wait drops the ring (returns 0) instead. The relay also
 * polls, so a dropped ring only delays delivery.
 *
 *  - A ring is a SUBMIT_JOB_BG to fn with unique key fn (its first 63
 *    bytes: gearmand refuses longer keys, and it coalesces per function and
 *    key, so the cut cannot merge two functions' rings): rings while one is
 *    queued make one job. The workload is the constant "ring", never empty:
 *    gearmand 1.1.20's sqlite queue stores an empty workload as NULL and
 *    then fails to start ("column 3 is not type TEXT ... failed to reload
 *    queue") while that job is queued.
 *  - Connects are non-blocking; one in progress is checked with a
 *    zero-timeout poll at later rings. A failed connect, one taking over
 *    RING_CONNECT_MS, EOF or an error closes the socket, and that server
 *    gets no new connect for RING_RETRY_MS (a dead gearmand costs one
 *    refused connect per half second, not one per row).
 *  - gearmand's answers (JOB_CREATED, ERROR) are read and dropped before each
 *    write, so our receive buffer never fills and stalls gearmand.
 *  - Writes use MSG_DONTWAIT: a full send buffer (a stalled gearmand) drops
 *    the ring.
 *  - Host names come from a process-wide cache filled off the writer's
 *    thread (below); numeric addresses are used at once.
 */

#define RING_SUFFIX ".outbox"
#define RING_WORKLOAD "ring"
#define RING_FN_MAX 255
#define RING_RETRY_MS 500.0
#define RING_CONNECT_MS 5000.0
/* Not errno values: why a ring connection was closed. */
#define RING_EOF (-1)
#define RING_SLOW (-2)
#define RING_PARTIAL (-3)

/*
 * Host names of ring servers, shared by all server threads (one lookup per
 * name, not one per session), resolved by glibc's getaddrinfo_a. Its helper
 * thread runs only glibc's code: a lookup may outlive this library (DROP
 * FUNCTION unloads it) and a thread of our own would then return into
 * unmapped code. A ring before its name is resolved is dropped. An address
 * is looked up again after RING_NAME_TTL_MS (a moved compose service), the
 * old one used meanwhile; a failed lookup is retried after
 * RING_NAME_RETRY_MS. IPv4 only, like the submits' (see conn_resolve).
 */
#define RING_NAMES 32
#define RING_NAME_TTL_MS 30000.0
#define RING_NAME_RETRY_MS 1000.0

struct ring_name {
	char *host;       /* NULL: a free slot */
	struct lookup *l; /* a lookup under way */
	bool ok;          /* addr holds an address */
	struct in_addr addr;
	double at;        /* when the last lookup ended */
	double used;      /* when last asked for: a full cache reuses the oldest */
	char error[96];   /* why the last lookup failed */
};

static pthread_mutex_t g_names_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ring_name g_names[RING_NAMES]; /* guarded by g_names_lock */

/* Takes the answer of e's lookup when it has ended. g_names_lock held. */
static void name_harvest(struct ring_name *e, double now)
{
	struct lookup *l = e->l;
	if (!l || gai_error(&l->cb) == EAI_INPROGRESS)
		return;
	int rc = gai_error(&l->cb);
	struct addrinfo *ai = rc == 0 ? l->cb.ar_result : NULL;
	if (ai && ai->ai_family == AF_INET) {
		e->addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
		e->ok = true;
	} else
		snprintf(e->error, sizeof e->error, "%s", gai_strerror(rc ? rc : EAI_NONAME));
	lookup_free(l);
	e->l = NULL;
	e->at = now;
}

/* Starts a lookup of e's name. g_names_lock held. */
static void name_start(struct ring_name *e, double now)
{
	struct lookup *l = calloc(1, sizeof *l);
	if (!l || !(l->name = strdup(e->host))) {
		free(l);
		snprintf(e->error, sizeof e->error, "out of memory");
		e->at = now;
		return;
	}
	l->hints.ai_family = AF_INET;
	l->hints.ai_socktype = SOCK_STREAM;
	l->cb.ar_name = l->name;
	l->cb.ar_request = &l->hints;
	struct gaicb *list[1] = {&l->cb};
	int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (rc != 0) {
		snprintf(e->error, sizeof e->error, "%s", gai_strerror(rc));
		lookup_free(l);
		e->at = now;
		return;
	}
	e->l = l;
}

/*
 * The cached IPv4 address of host, starting (never waiting for) a lookup
 * when there is none or it is old; false with the reason in why when there
 * is no address yet.
 */
static bool name_addr(const char *host, struct in_addr *out, char *why, size_t whylen)
{
	double now = now_ms();
	bool ok = false;
	pthread_mutex_lock(&g_names_lock);
	struct ring_name *e = NULL, *free_slot = NULL, *lru = NULL;
	for (int i = 0; i < RING_NAMES; i++) {
		struct ring_name *x = &g_names[i];
		if (!x->host) {
			if (!free_slot)
				free_slot = x;
		} else if (strcmp(x->host, host) == 0) {
			e = x;
			break;
		} else if (!x->l && (!lru || x->used < lru->used))
			lru = x; /* the least recently used name with no lookup under way */
	}
	if (!e) {
		struct ring_name *slot = free_slot ? free_slot : lru;
		char *h = slot ? strdup(host) : NULL;
		if (!h) {
			snprintf(why, whylen, "resolving %.64s: %s", host,
				 slot ? "out of memory" : "too many host names being resolved");
			goto out;
		}
		free(slot->host);
		memset(slot, 0, sizeof *slot);
		slot->host = h;
		e = slot;
		name_start(e, now);
	}
	e->used = now;
	name_harvest(e, now);
	if (!e->l && now - e->at >= (e->ok ? RING_NAME_TTL_MS : RING_NAME_RETRY_MS))
		name_start(e, now);
	ok = e->ok;
	if (ok)
		*out = e->addr;
	else if (e->l)
		snprintf(why, whylen, "resolving %.64s (under way)", host);
	else
		snprintf(why, whylen, "resolving %.64s: %s", host, e->error);
out:
	pthread_mutex_unlock(&g_names_lock);
	return ok;
}

/* At unload: lookups under way are left to glibc (see lookup_free). */
static void names_free(void)
{
	pthread_mutex_lock(&g_names_lock);
	for (int i = 0; i < RING_NAMES; i++) {
		lookup_free(g_names[i].l);
		free(g_names[i].host);
		memset(&g_names[i], 0, sizeof g_names[i]);
	}
	pthread_mutex_unlock(&g_names_lock);
}

static const char *ring_fail_str(int code)
{
	switch (code) {
	case RING_EOF:
		return "connection closed by gearmand";
	case RING_SLOW:
		return "connect took over 5 s";
	case RING_PARTIAL:
		return "send buffer full mid-packet (connection dropped)";
	default:
		return strerror(code);
	}
}

/* Closes server i's ring socket after a failure (code: errno, RING_EOF, RING_SLOW). */
static void ring_close(struct ring *r, int i, int code, double now, char *why, size_t whylen)
{
	if (r->c.sock[i])
		close(r->c.sock[i] - 1);
	r->c.sock[i] = 0;
	r->connecting[i] = false;
	r->retry_at[i] = now + RING_RETRY_MS;
	r->fail[i] = code;
	snprintf(why, whylen, "%s", ring_fail_str(code));
}

/* Starts a non-blocking connect to server i; false (why set) when none was started. */
static bool ring_connect(struct ring *r, int i, double now, char *why, size_t whylen)
{
	if (now < r->retry_at[i]) {
		snprintf(why, whylen, "%s (next connect in %.0f ms)", ring_fail_str(r->fail[i]), r->retry_at[i] - now);
		return false;
	}
	struct sockaddr_storage sa = {0};
	socklen_t salen;
	struct sockaddr_in *v4 = (struct sockaddr_in *)&sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sa;
	const char *host = r->c.host[i];
	if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(r->c.port[i]);
		salen = sizeof *v6;
	} else if (inet_pton(AF_INET, host, &v4->sin_addr) == 1 || name_addr(host, &v4->sin_addr, why, whylen)) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(r->c.port[i]);
		salen = sizeof *v4;
	} else
		return false;
	int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ring_close(r, i, errno, now, why, whylen);
		return false;
	}
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* a ring goes out at once */
	int e = connect(fd, (struct sockaddr *)&sa, salen) == 0 ? 0 : errno;
	if (e != 0 && e != EINPROGRESS) {
		close(fd);
		ring_close(r, i, e, now, why, whylen);
		return false;
	}
	r->c.sock[i] = fd + 1;
	r->connecting[i] = e == EINPROGRESS;
	r->since[i] = now;
	return true;
}

/*
 * Server i's ring socket when it is connected and its answers are drained;
 * -1 (why set) when it is not (yet). Starts a connect when there is none.
 */
static int ring_ready(struct ring *r, int i, double now, char *why, size_t whylen)
{
	if (!r->c.sock[i] && !ring_connect(r, i, now, why, whylen))
		return -1;
	int fd = r->c.sock[i] - 1;
	if (r->connecting[i]) {
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int n = poll(&p, 1, 0);
		if (n == 0 || (n < 0 && errno == EINTR)) {
			if (now - r->since[i] < RING_CONNECT_MS) {
				snprintf(why, whylen, "connecting");
				return -1;
			}
			ring_close(r, i, RING_SLOW, now, why, whylen);
			return -1;
		}
		int e = 0;
		socklen_t len = sizeof e;
		if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
			e = errno;
		if (e != 0) {
			ring_close(r, i, e, now, why, whylen);
			return -1;
		}
		r->connecting[i] = false;
	}
	/* gearmand's answers to earlier rings; bounded, so a chatty peer cannot hold us. */
	char buf[4096];
	for (int k = 0; k < 64; k++) {
		ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
		if (n > 0 || (n < 0 && errno == EINTR))
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		ring_close(r, i, n == 0 ? RING_EOF : errno, now, why, whylen);
		return -1;
	}
	return fd;
}

/*
 * Rings coalesce in mysqld too: a ring of the same function to the same
 * servers written less than RING_COALESCE_MS ago (by any thread) stands
 * for this one, which returns 1 without a packet. The relay it woke looks
 * again 1 ms after each look that found rows and 1, 2, 3, 5 ms after one
 * that found none, so the writes behind the skipped rings are found
 * within a few ms. Each ring written costs the writer a send and gearmand
 * a job: 16 µs of a 250 µs UPDATE at one ring per write. A coalesced one
 * still costs a trigger about 8 µs, as does a ring to a dead server: MySQL's
 * set-up of the UDF call, not this code.
 */
#define RING_COALESCE_MS 5.0
#define RING_RECENT 16
static pthread_mutex_t g_ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	uint64_t key;
	double at;
} g_rang[RING_RECENT]; /* guarded by g_ring_lock */

/* FNV-1a of fn, a NUL and the server list (empty: the global one). */
static uint64_t ring_key(const char *fn, const char *servers)
{
	uint64_t h = 14695981039346656037ULL;
	for (const char *p = fn; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h = (h ^ 0) * 1099511628211ULL;
	for (const char *p = servers ? servers : ""; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h | 1; /* never 0, a free slot's key */
}

/* Whether key's last ring was written less than RING_COALESCE_MS ago. */
static bool ring_recent(uint64_t key, double now)
{
	bool recent = false;
	pthread_mutex_lock(&g_ring_lock);
	for (int i = 0; i < RING_RECENT; i++)
		if (g_rang[i].key == key) {
			recent = now - g_rang[i].at < RING_COALESCE_MS;
			break;
		}
	pthread_mutex_unlock(&g_ring_lock);
	return recent;
}

/* Notes that key's ring was written at now (its slot, or the oldest). */
static void ring_rang(uint64_t key, double now)
{
	pthread_mutex_lock(&g_ring_lock);
	int slot = 0;
	for (int i = 0; i < RING_RECENT; i++) {
		if (g_rang[i].key == key) {
			slot = i;
			break;
		}
		if (g_rang[i].at < g_rang[slot].at)
			slot = i;
	}
	g_rang[slot].key = key;
	g_rang[slot].at = now;
	pthread_mutex_unlock(&g_ring_lock);
}

RG_API rg_bool rowgear_ring_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
	if (args->arg_count < 1 || args->arg_count > 2) {
		snprintf(message, MYSQL_ERRMSG_SIZE, "takes 1 or 2 arguments: function [, servers]");
		return 1;
	}
	for (unsigned i = 0; i < args->arg_count; i++)
		args->arg_type[i] = STRING_RESULT;
	initid->maybe_null = 1;
	initid->const_item = 0;
	return 0;
}

RG_API void rowgear_ring_deinit(UDF_INIT *initid) { (void)initid; }

/*
 * 1: the ring was written to a gearmand's socket; 0: it was dropped
 * (gman_last_error() says why); NULL: a bad argument (counted and logged
 * like a submit's failure: it is a bug in the trigger).
 */
RG_API long long rowgear_ring(UDF_INIT *initid, UDF_ARGS *args, char *is_null, char *error)
{
	(void)initid;
	(void)error;
	char fn[RING_FN_MAX + 1];
	char servers[MAX_SERVERS_LEN + 1];
	char err[ERRBUF_LEN];
	const char *override = NULL;

	*is_null = 1;
	struct tstate *ts = state_get(true);
	if (!ts) {
		submit_failed(NULL, "rowgear_ring: out of memory for thread state");
		return 0;
	}
	ts->has_error = false;

	/*
	 * Any account can call this: only doorbell names, so a ring can never
	 * be a job a row-event, record or plain worker function would run.
	 */
	size_t fl = args->args[0] ? args->lengths[0] : 0;
	size_t sl = sizeof RING_SUFFIX - 1;
	if (!args->args[0]) {
		submit_failed(ts, "rowgear_ring: function name is NULL");
		return 0;
	}
	if (fl == 0) {
		submit_failed(ts, "rowgear_ring: function name is empty: want a name ending in '%s' (e.g. "
			      "'rowgear.outbox')", RING_SUFFIX);
		return 0;
	}
	if (fl > RING_FN_MAX || has_nul(args->args[0], fl)) {
		submit_failed(ts, "rowgear_ring: function name longer than %d bytes or contains a NUL byte", RING_FN_MAX);
		return 0;
	}
	arg_cstr(args, 0, fn, sizeof fn);
	if (fl <= sl || memcmp(fn + fl - sl, RING_SUFFIX, sl) != 0) {
		submit_failed(ts, "rowgear_ring: function '%.200s' is not allowed: the name must end in '%s' "
			      "(e.g. 'rowgear.outbox')", fn, RING_SUFFIX);
		return 0;
	}

	/* servers: per-call override of the global list, as for the submits */
	if (args->arg_count >= 2 && args->args[1]) {
		bool servers_arg;
		int ms_per_mib;
		long max_workload;
		config_limits(&servers_arg, &ms_per_mib, &max_workload);
		if (!servers_arg) {
			submit_failed(ts, "rowgear_ring(%s): the servers argument is disabled: the server list comes "
				      "from mysqld's environment (ROWGEAR_UDF_ALLOW_SERVERS_ARG=1 enables the argument)", fn);
			return 0;
		}
		if (args->lengths[1] == 0 || args->lengths[1] > MAX_SERVERS_LEN || has_nul(args->args[1], args->lengths[1])) {
			submit_failed(ts, "rowgear_ring(%s): servers must be a non-empty 'host:port,...' list of at most %d bytes",
				      fn, MAX_SERVERS_LEN);
			return 0;
		}
		arg_cstr(args, 1, servers, sizeof servers);
		override = servers;
	}

	double now = now_ms();
	uint64_t key = ring_key(fn, override);
	if (ring_recent(key, now)) {
		*is_null = 0;
		return 1;
	}

	struct ring *r = override ? &ts->ring_override : &ts->ring_global;
	bool rebuilt;
	if (!conn_load(&r->c, override, &rebuilt, err, sizeof err)) {
		if (override) {
			submit_failed(ts, "rowgear_ring(%s): %s", fn, err);
			return 0;
		}
		/* The environment's list is wrong: logged at load; not the caller's fault. */
		set_error(ts, "rowgear_ring(%s): dropped: %s", fn, err);
		*is_null = 0;
		return 0;
	}
	if (rebuilt) {
		memset(r->connecting, 0, sizeof r->connecting);
		memset(r->retry_at, 0, sizeof r->retry_at);
		memset(r->fail, 0, sizeof r->fail);
	}

	/* SUBMIT_JOB_BG: fn \0 unique \0 workload */
	unsigned char pkt[12 + RING_FN_MAX + 1 + GEARMAN_MAX_UNIQUE_SIZE + sizeof RING_WORKLOAD];
	size_t ul = fl < GEARMAN_MAX_UNIQUE_SIZE - 1 ? fl : GEARMAN_MAX_UNIQUE_SIZE - 1;
	size_t body = fl + 1 + ul + 1 + (sizeof RING_WORKLOAD - 1);
	size_t len = 12 + body;
	memcpy(pkt, REQ_MAGIC, 4);
	put32(pkt + 4, REQ_SUBMIT_JOB_BG);
	put32(pkt + 8, (uint32_t)body);
	memcpy(pkt + 12, fn, fl + 1);
	memcpy(pkt + 12 + fl + 1, fn, ul);
	pkt[12 + fl + 1 + ul] = '\0';
	memcpy(pkt + 12 + fl + 1 + ul + 1, RING_WORKLOAD, sizeof RING_WORKLOAD - 1);

	/*
	 * The first server in list order that is ready gets the ring; every
	 * server is visited, so the others get their connects started (and
	 * their answers drained) for when the first one fails.
	 */
	bool rung = false;
	size_t wl = 0;
	err[0] = '\0';
	for (int i = 0; i < r->c.n; i++) {
		char why[256];
		int fd = ring_ready(r, i, now, why, sizeof why);
		if (fd >= 0 && !rung) {
			ssize_t n = send(fd, pkt, len, MSG_DONTWAIT | MSG_NOSIGNAL);
			if (n == (ssize_t)len) {
				rung = true;
				continue;
			}
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
				snprintf(why, sizeof why, "send buffer full"); /* nothing written: the connection stays */
			else if (n >= 0)
				/* Part of a packet would garble the stream: start over. */
				ring_close(r, i, RING_PARTIAL, now, why, sizeof why);
			else
				ring_close(r, i, errno, now, why, sizeof why);
			fd = -1;
		}
		if (fd < 0 && wl < sizeof err)
			wl += (size_t)snprintf(err + wl, sizeof err - wl, "%s%.256s: %s", wl ? "; " : "", r->c.server[i], why);
	}
	*is_null = 0;
	if (rung) {
		ring_rang(key, now);
		return 1;
	}
	set_error(ts, "rowgear_ring(%s): dropped: %s", fn, err);
	return 0;
}

/* ------------------------------------------------------- gman_servers_set */

/* string_result_init gives a STRING function that may return NULL a result
 * buffer of max_len bytes plus a NUL, kept in initid->ptr for the statement. */
static rg_bool string_result_init(UDF_INIT *initid, unsigned long max_len, const char *name, char *message)
{
	initid->ptr = malloc(max_len + 1);
	if (!initid->ptr) {
		snprintf(message, MYSQL_ERRMSG_SIZE, "%s: out of memory", name);
		return 1;
	}
	initid->maybe_null = 1;
	initid->const_item = 0;
	initid->max_length = max_len;
	return 0;
}

static void string_result_deinit(UDF_INIT *initid)
{
	free(initid->ptr);
	initid->ptr = NULL;
}

RG_API rg_bool gman_servers_set_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
	if (args->arg_count != 1) {
		snprintf(message, MYSQL_ERRMSG_SIZE, "takes 1 argument: NULL, to read the server list (it is read-only)");
		return 1;
	}
	args->arg_type[0] = STRING_RESULT;
	return string_result_init(initid, MAX_SERVERS_LEN, "gman_servers_set", message);
}

RG_API void gman_servers_set_deinit(UDF_INIT *initid)
{
	string_result_deinit(initid);
}

RG_API char *gman_servers_set(UDF_INIT *initid, UDF_ARGS *args, char *result, unsigned long *length,
			      char *is_null, char *error)
{
	(void)result;
	(void)error;
	char *out = initid->ptr;
	char err[ERRBUF_LEN];
	struct tstate *ts = state_get(true);

	*is_null = 1;
	*length = 0;
	if (args->args[0]) {
		/* Read-only: a list set here would redirect other sessions' rows. */
		set_error(ts, "gman_servers_set: the server list is read-only from SQL; it comes from mysqld's "
			      "environment (ROWGEAR_GEARMAN_SERVERS) when the library loads");
		return NULL;
	}
	char *cur = NULL;
	config_snapshot(&cur, NULL, NULL, err, sizeof err);
	if (!cur) {
		set_error(ts, "gman_servers_set: %s", err);
		return NULL;
	}
	size_t n = strlen(cur);
	if (n > MAX_SERVERS_LEN)
		n = MAX_SERVERS_LEN;
	memcpy(out, cur, n);
	free(cur);
	*length = n;
	*is_null = 0;
	return out;
}

/* ------------------------------------------------------- gman_timeout_set */

RG_API rg_bool gman_timeout_set_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
	if (args->arg_count != 1) {
		snprintf(message, MYSQL_ERRMSG_SIZE, "takes 1 argument: NULL, to read the timeout (it is read-only)");
		return 1;
	}
	args->arg_type[0] = INT_RESULT;
	initid->maybe_null = 1;
	initid->const_item = 0;
	return 0;
}

RG_API void gman_timeout_set_deinit(UDF_INIT *initid) { (void)initid; }

RG_API long long gman_timeout_set(UDF_INIT *initid, UDF_ARGS *args, char *is_null, char *error)
{
	(void)initid;
	(void)error;
	*is_null = 0;
	if (args->args[0]) {
		/* Read-only: a timeout set here would change other sessions' writes. */
		set_error(state_get(true), "gman_timeout_set: the timeout is read-only from SQL; it comes from "
					   "mysqld's environment (ROWGEAR_GEARMAN_TIMEOUT_MS) when the library loads");
		*is_null = 1;
		return 0;
	}
	int t;
	config_snapshot(NULL, &t, NULL, NULL, 0);
	return t;
}

/* ---------------------------------------------------------- gman_failures */

RG_API rg_bool gman_failures_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
	if (args->arg_count != 0) {
		snprintf(message, MYSQL_ERRMSG_SIZE, "takes no arguments");
		return 1;
	}
	initid->maybe_null = 0;
	initid->const_item = 0;
	return 0;
}

RG_API void gman_failures_deinit(UDF_INIT *initid) { (void)initid; }

RG_API long long gman_failures(UDF_INIT *initid, UDF_ARGS *args, char *is_null, char *error)
{
	(void)initid;
	(void)args;
	(void)error;
	*is_null = 0;
	return (long long)__atomic_load_n(&g_failures, __ATOMIC_RELAXED);
}

/* -------------------------------------------------------- gman_last_error */

RG_API rg_bool gman_last_error_init(UDF_INIT *initid, UDF_ARGS *args, char *message)
{
	if (args->arg_count != 0) {
		snprintf(message, MYSQL_ERRMSG_SIZE, "takes no arguments");
		return 1;
	}
	return string_result_init(initid, ERRBUF_LEN, "gman_last_error", message);
}

RG_API void gman_last_error_deinit(UDF_INIT *initid)
{
	string_result_deinit(initid);
}

RG_API char *gman_last_error(UDF_INIT *initid, UDF_ARGS *args, char *result, unsigned long *length,
			     char *is_null, char *error)
{
	(void)args;
	(void)result;
	(void)error;
	struct tstate *ts = state_get(false);
	if (!ts || !ts->has_error) {
		*is_null = 1;
		*length = 0;
		return NULL;
	}
	size_t n = strnlen(ts->last_error, ERRBUF_LEN - 1);
	memcpy(initid->ptr, ts->last_error, n);
	*length = n;
	*is_null = 0;
	return initid->ptr;
}
