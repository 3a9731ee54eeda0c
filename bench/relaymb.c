// bench/relaymb.c - a C replica of the relay worker loop, for paired A/B of per-packet CPU (issue 3).
//
// One process: an rtpload-like generator thread (1 ms ticks, 20 ms ptime, 172-byte packets both
// ways, CALLS calls = 2 relay ports each) and one relay thread that switches between two modes A
// and B every few seconds (a second one, idle otherwise, serves modes with f); prints the relay
// thread's CPU per relayed packet (and the whole process's, and the machine's busy time from
// /proc/stat, which this VM does not keep reliably) per round and in total, and B/A.
//
// Usage: relaymb [-c CALLS] [-n ROUNDS] [-s SECONDS] MODE_A MODE_B
// A mode is a string of letters ("-" or "" = the base). The base is what homeline's worker does:
// level-triggered epoll (maxevents 1024, 5 ms timeout), one recvfrom per ready socket, send on a
// SO_REUSEPORT twin socket connected to the destination. Letters:
//   u  unconnected: sendto from the port's socket (no twin; homeline before its second pass)
//   a  pin the relay thread to CPU 0 (A: to CPU 1); the generator stays unpinned
//   r  recv() without the source address on the connected twin (its peer is known)
//   o  IP_MTU_DISCOVER = IP_PMTUDISC_OMIT on relay sockets (d: IP_PMTUDISC_DONT)
//   k  SO_NO_CHECK (no UDP checksum on send)
//   t  IP_TOS 0xb8 (EF)
//   b  SO_SNDBUF 4 MB (default is net.core.wmem_default)
//   e  epoll maxevents 64;  2  epoll_pwait2 with a 5 ms timespec
//   w  recv all ready sockets first, then send all (instead of recv/send per socket)
//   i  io_uring, batched: per epoll wake-up one io_uring_enter with every recv, one with every send
//   I  io_uring only: multishot recv on every socket (provided buffer ring), sends queued and
//      submitted together with the wait, one io_uring_enter per loop, no epoll
//   f  the relay thread has a file table of its own (unshare(CLONE_FILES)): its system calls
//      then look their fd up without taking a reference (a second relay thread serves these modes)
//   (i and I need -DWITH_URING and -luring; information only, homeline does not use io_uring)
// Loopback only (127.0.0.1 ports 20000+ for the generator, 42000+ for the relay).
// Build: cc -O2 -o relaymb bench/relaymb.c -lpthread             (modes without i/I)
//        cc -O2 -DWITH_URING -o relaymb bench/relaymb.c -lpthread -luring
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <pthread.h>
#include <sched.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/mman.h>
#include <time.h>
#include <stdint.h>
#include <errno.h>
#ifdef WITH_URING
#include <liburing.h>
#endif

struct mode { int priv, unconn, pin, recvonly, pmtu, nocheck, tos, sndbuf, ev64, pwait2, split, uring, uall; };
static struct mode parse(const char *s)
{
	struct mode m = {0};
	for (; *s; s++) switch (*s) {
	case 'u': m.unconn = 1; break; case 'a': m.pin = 1; break; case 'A': m.pin = 2; break;
	case 'r': m.recvonly = 1; break; case 'o': m.pmtu = IP_PMTUDISC_OMIT; break;
	case 'd': m.pmtu = IP_PMTUDISC_DONT; break; case 'k': m.nocheck = 1; break;
	case 't': m.tos = 1; break; case 'b': m.sndbuf = 1; break; case 'e': m.ev64 = 1; break;
	case '2': m.pwait2 = 1; break; case 'f': m.priv = 1; break; case 'w': m.split = 1; break;
	case 'i': m.uring = 1; break; case 'I': m.uall = 1; break; case '-': break;
	default: fprintf(stderr, "unknown mode letter %c\n", *s); exit(2);
	}
#ifndef WITH_URING
	if (m.uring || m.uall) { fprintf(stderr, "built without WITH_URING\n"); exit(2); }
#endif
	return m;
}

static int CALLS = 590, NR = 16, SECS = 2, NE;
static int *gs, *rs, *rc; static struct sockaddr_in *ga, *ra;
static struct mode modes[2]; static volatile int want = 0, quit = 0, owner = -1; static volatile long relayed = 0;
static int rep, defsnd;

static int mkbind(int port, int reuse)
{
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0), one = 1, big = 1 << 20;
	if (reuse) setsockopt(s, SOL_SOCKET, SO_REUSEPORT, &one, 4);
	setsockopt(s, SOL_SOCKET, SO_RCVBUF, &big, 4);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
	a.sin_addr.s_addr = htonl(0x7f000001);
	if (bind(s, (void *)&a, sizeof a)) { perror("bind"); exit(1); }
	return s;
}
static void opts(int s, const struct mode *m)
{
	int v = m->pmtu ? m->pmtu : IP_PMTUDISC_WANT; setsockopt(s, IPPROTO_IP, IP_MTU_DISCOVER, &v, 4);
	v = m->nocheck; setsockopt(s, SOL_SOCKET, SO_NO_CHECK, &v, 4);
	v = m->tos ? 0xb8 : 0; setsockopt(s, IPPROTO_IP, IP_TOS, &v, 4);
	v = m->sndbuf ? 4 << 20 : defsnd / 2; setsockopt(s, SOL_SOCKET, SO_SNDBUF, &v, 4);
}
static void reg(int fd, uint64_t key, int op)
{
	struct epoll_event e = {.events = EPOLLIN, .data.u64 = key};
	epoll_ctl(rep, op, fd, &e);
}

#ifdef WITH_URING
#define NBUF 4096
#define TAG_SEND (1ull << 62)
static struct io_uring ring; static int ring_on; static struct io_uring_buf_ring *br; static char *bufs;
static char (*sendslot)[2048]; static unsigned slot;
static void ring_up(int all)
{
	struct io_uring_params p = {0};
	p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
	if (io_uring_queue_init_params(8192, &ring, &p)) { perror("io_uring"); exit(1); }
	ring_on = 1;
	if (!all) return;
	br = mmap(0, NBUF * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct io_uring_buf_reg r = {.ring_addr = (unsigned long)br, .ring_entries = NBUF, .bgid = 0};
	if (io_uring_register_buf_ring(&ring, &r, 0)) { fprintf(stderr, "buf ring\n"); exit(1); }
	io_uring_buf_ring_init(br);
	for (int i = 0; i < NBUF; i++)
		io_uring_buf_ring_add(br, bufs + (size_t)i * 2048, 2048, i, NBUF - 1, i);
	io_uring_buf_ring_advance(br, NBUF);
}
static void arm(int fd, uint64_t key)
{
	struct io_uring_sqe *q = io_uring_get_sqe(&ring);
	if (!q) { io_uring_submit(&ring); q = io_uring_get_sqe(&ring); }
	io_uring_prep_recv_multishot(q, fd, NULL, 0, 0);
	q->flags |= IOSQE_BUFFER_SELECT; q->buf_group = 0; io_uring_sqe_set_data64(q, key);
}
static void ring_down(void)
{
	if (!ring_on) return;
	io_uring_queue_exit(&ring); ring_on = 0;
	if (br) { munmap(br, NBUF * sizeof(struct io_uring_buf)); br = 0; }
}
static void qsend(int fd, const void *b, int len, const struct sockaddr_in *to)
{
	struct io_uring_sqe *q = io_uring_get_sqe(&ring);
	if (!q) { io_uring_submit(&ring); q = io_uring_get_sqe(&ring); }
	io_uring_prep_send(q, fd, b, len, 0);
	if (to) io_uring_prep_send_set_addr(q, (void *)to, sizeof *to);
	q->flags |= IOSQE_CQE_SKIP_SUCCESS; io_uring_sqe_set_data64(q, TAG_SEND);
}
#endif

static void apply(const struct mode *m, const struct mode *old)
{
#ifdef WITH_URING
	ring_down();
#endif
	cpu_set_t cs; CPU_ZERO(&cs);
	if (m->pin) CPU_SET(m->pin - 1, &cs); else for (int c = 0; c < CPU_SETSIZE; c++) CPU_SET(c, &cs);
	pthread_setaffinity_np(pthread_self(), sizeof cs, &cs);
	for (int i = 0; i < NE; i++) {
		if (rc[i] >= 0) { if (!old || !old->uall) reg(rc[i], 0, EPOLL_CTL_DEL); close(rc[i]); rc[i] = -1; }
		opts(rs[i], m);
		if (m->uall && !(old && old->uall)) reg(rs[i], 0, EPOLL_CTL_DEL);
		if (!m->uall && old && old->uall) reg(rs[i], i, EPOLL_CTL_ADD);
		if (!m->unconn) {
			rc[i] = mkbind(ntohs(ra[i].sin_port), 1); opts(rc[i], m);
			connect(rc[i], (void *)&ga[i], sizeof ga[i]);
			if (!m->uall) reg(rc[i], (1ull << 32) | i, EPOLL_CTL_ADD);
		}
	}
#ifdef WITH_URING
	if (m->uring || m->uall) ring_up(m->uall);
	if (m->uall) {
		for (int i = 0; i < NE; i++) { arm(rs[i], i); if (rc[i] >= 0) arm(rc[i], (1ull << 32) | i); }
		io_uring_submit(&ring);
	}
#endif
}

static inline void out(const struct mode *m, int o, const char *b, int len)
{
	if (!m->unconn && rc[o] >= 0) send(rc[o], b, len, 0);
	else sendto(rs[o], b, len, 0, (void *)&ga[o], sizeof ga[o]);
}

static void *relay(void *x)
{
	static __thread struct epoll_event ev[1024]; static __thread char buf[1024][2048]; static __thread int len[1024];
	int priv = (int)(intptr_t)x, cur = -1; struct mode m = {0}, prev;
	struct timespec ts5 = {0, 5000000};
	if (priv && unshare(CLONE_FILES)) { perror("unshare"); exit(1); }
	while (!quit) {
		int w = want;
		if (modes[w].priv != priv) { // the other relay thread's turn: hand the twins over
			if (cur >= 0) {
				for (int i = 0; i < NE; i++) if (rc[i] >= 0) { reg(rc[i], 0, EPOLL_CTL_DEL); close(rc[i]); rc[i] = -1; }
#ifdef WITH_URING
				ring_down();
#endif
				cur = -1; m = (struct mode){0}; owner = -1;
			}
			usleep(1000); continue;
		}
		if (cur < 0) { if (owner != -1) { usleep(1000); continue; } owner = priv; }
		if (w != cur) { prev = m; m = modes[w]; apply(&m, cur < 0 ? NULL : &prev); cur = w; }
#ifdef WITH_URING
		if (m.uall) {
			io_uring_submit_and_wait(&ring, 1);
			struct io_uring_cqe *c; unsigned head, seen = 0, back = 0;
			io_uring_for_each_cqe(&ring, head, c) {
				seen++;
				uint64_t key = c->user_data;
				if (key == TAG_SEND) continue;
				int i = key & 0xffffffff, o = i ^ 1;
				if (c->res > 0 && (c->flags & IORING_CQE_F_BUFFER)) {
					int bid = c->flags >> IORING_CQE_BUFFER_SHIFT;
					char *s = sendslot[slot++ & 8191];
					memcpy(s, bufs + (size_t)bid * 2048, c->res);
					io_uring_buf_ring_add(br, bufs + (size_t)bid * 2048, 2048, bid, NBUF - 1, back++);
					if (!m.unconn && rc[o] >= 0) qsend(rc[o], s, c->res, NULL);
					else qsend(rs[o], s, c->res, &ga[o]);
					relayed++;
				}
				if (!(c->flags & IORING_CQE_F_MORE)) arm((key >> 32) ? rc[i] : rs[i], key);
			}
			if (back) io_uring_buf_ring_advance(br, back);
			io_uring_cq_advance(&ring, seen);
			continue;
		}
#endif
		int maxev = m.ev64 ? 64 : 1024;
		int n = m.pwait2 ? epoll_pwait2(rep, ev, maxev, &ts5, NULL) : epoll_wait(rep, ev, maxev, 5);
		if (n <= 0) continue;
#ifdef WITH_URING
		if (m.uring) {
			for (int k = 0; k < n; k++) {
				uint64_t key = ev[k].data.u64; int i = key & 0xffffffff;
				struct io_uring_sqe *q = io_uring_get_sqe(&ring);
				io_uring_prep_recv(q, (key >> 32) ? rc[i] : rs[i], buf[k], 2048, MSG_DONTWAIT);
				io_uring_sqe_set_data64(q, k);
			}
			io_uring_submit_and_wait(&ring, n);
			struct io_uring_cqe *c; unsigned head, seen = 0;
			for (int k = 0; k < n; k++) len[k] = -1;
			io_uring_for_each_cqe(&ring, head, c) { seen++; if (c->user_data != TAG_SEND) len[c->user_data] = c->res; }
			io_uring_cq_advance(&ring, seen);
			for (int k = 0; k < n; k++) {
				if (len[k] <= 0) continue;
				int o = (ev[k].data.u64 & 0xffffffff) ^ 1;
				if (!m.unconn && rc[o] >= 0) qsend(rc[o], buf[k], len[k], NULL);
				else qsend(rs[o], buf[k], len[k], &ga[o]);
				relayed++;
			}
			io_uring_submit(&ring);
			continue;
		}
#endif
		for (int k = 0; k < n; k++) {
			uint64_t key = ev[k].data.u64; int i = key & 0xffffffff, conn = key >> 32;
			int fd = conn ? rc[i] : rs[i];
			struct sockaddr_in f; socklen_t fl = sizeof f;
			char *b = buf[m.split ? k : 0];
			len[k] = (m.recvonly && conn) ? recv(fd, b, 2048, 0) : recvfrom(fd, b, 2048, 0, (void *)&f, &fl);
			if (m.split || len[k] <= 0) continue;
			out(&m, i ^ 1, b, len[k]); relayed++;
		}
		if (m.split)
			for (int k = 0; k < n; k++)
				if (len[k] > 0) { out(&m, (ev[k].data.u64 & 0xffffffff) ^ 1, buf[k], len[k]); relayed++; }
	}
	return 0;
}

static void *gen(void *x)
{
	int ep = epoll_create1(0);
	for (int i = 0; i < NE; i++) { struct epoll_event e = {.events = EPOLLIN, .data.u32 = i}; epoll_ctl(ep, EPOLL_CTL_ADD, gs[i], &e); }
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	struct itimerspec its = {{0, 1000000}, {0, 1000000}}; timerfd_settime(tfd, 0, &its, 0);
	struct epoll_event te = {.events = EPOLLIN, .data.u32 = 0xffffffff}; epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &te);
	char pkt[172]; memset(pkt, 0xff, 172); struct epoll_event ev[256]; char buf[2048]; uint64_t tick = 0;
	while (!quit) {
		int n = epoll_wait(ep, ev, 256, 5);
		for (int k = 0; k < n; k++) {
			uint32_t id = ev[k].data.u32;
			if (id == 0xffffffff) {
				uint64_t e; if (read(tfd, &e, 8) != 8) continue;
				for (uint64_t t = 0; t < e; t++) {
					for (int c = tick % 20; c < CALLS; c += 20)
						for (int j = 2 * c; j < 2 * c + 2; j++) sendto(gs[j], pkt, 172, 0, (void *)&ra[j], sizeof ra[j]);
					tick++;
				}
				continue;
			}
			while (recv(gs[id], buf, 2048, MSG_DONTWAIT) > 0);
		}
	}
	return 0;
}

static long long busy(void) // whole machine, non-idle jiffies (user..steal minus idle/iowait)
{
	FILE *f = fopen("/proc/stat", "r"); long long v[10] = {0};
	if (!f || fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]) != 8) { if (f) fclose(f); return 0; }
	fclose(f); return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}
static double us(clockid_t c) { struct timespec t; clock_gettime(c, &t); return t.tv_sec * 1e6 + t.tv_nsec / 1e3; }

int main(int argc, char **argv)
{
	int opt;
	while ((opt = getopt(argc, argv, "c:n:s:")) != -1) switch (opt) {
	case 'c': CALLS = atoi(optarg); break; case 'n': NR = atoi(optarg); break; case 's': SECS = atoi(optarg); break;
	default: fprintf(stderr, "usage: relaymb [-c CALLS] [-n ROUNDS] [-s SECONDS] MODE_A MODE_B\n"); return 2;
	}
	if (argc - optind != 2) { fprintf(stderr, "two modes needed\n"); return 2; }
	const char *name[2] = {argv[optind], argv[optind + 1]};
	modes[0] = parse(name[0]); modes[1] = parse(name[1]);
	NE = 2 * CALLS;
	gs = calloc(NE, sizeof *gs); rs = calloc(NE, sizeof *rs); rc = calloc(NE, sizeof *rc);
	ga = calloc(NE, sizeof *ga); ra = calloc(NE, sizeof *ra);
	{ int s = socket(AF_INET, SOCK_DGRAM, 0); socklen_t l = 4; getsockopt(s, SOL_SOCKET, SO_SNDBUF, &defsnd, &l); close(s); }
#ifdef WITH_URING
	bufs = aligned_alloc(4096, (size_t)NBUF * 2048); sendslot = aligned_alloc(4096, 8192 * 2048);
#endif
	rep = epoll_create1(0);
	for (int i = 0; i < NE; i++) {
		gs[i] = mkbind(20000 + i, 0); rs[i] = mkbind(42000 + i, 1); rc[i] = -1;
		ga[i] = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(20000 + i)};
		ga[i].sin_addr.s_addr = htonl(0x7f000001);
		ra[i] = ga[i]; ra[i].sin_port = htons(42000 + i);
		reg(rs[i], i, EPOLL_CTL_ADD);
	}
	// The generator sends from gs[j] to ra[j]; the relay forwards out of port j^1 to ga[j^1].
	pthread_t rt, rt2, gt; pthread_create(&rt, 0, relay, (void *)0); pthread_create(&rt2, 0, relay, (void *)1);
	pthread_create(&gt, 0, gen, 0);
	clockid_t cid, cid2; pthread_getcpuclockid(rt, &cid); pthread_getcpuclockid(rt2, &cid2);
	double cpu[2] = {0}, proc[2] = {0}, pk[2] = {0}, mach[2] = {0}; long hz = sysconf(_SC_CLK_TCK);
	for (int r = 0; r < 2 * NR; r++) {
		int m = r & 1; want = m; sleep(1);
		double a = us(cid) + us(cid2), pa = us(CLOCK_PROCESS_CPUTIME_ID); long long ba = busy(); long p0 = relayed;
		sleep(SECS);
		double b = us(cid) + us(cid2), pb = us(CLOCK_PROCESS_CPUTIME_ID); long long bb = busy(); long p1 = relayed;
		double n = p1 - p0, mu = (bb - ba) * 1e6 / hz;
		printf("%-6s relay %.3f us/pkt  process %.3f  machine %.3f  (%.0f pps)\n", name[m][0] ? name[m] : "-",
		       (b - a) / n, (pb - pa) / n, mu / n, n / SECS);
		fflush(stdout);
		cpu[m] += b - a; proc[m] += pb - pa; mach[m] += mu; pk[m] += n;
	}
	for (int m = 0; m < 2; m++)
		printf("TOTAL %-6s relay %.3f us/pkt  process %.3f  machine %.3f\n", name[m][0] ? name[m] : "-",
		       cpu[m] / pk[m], proc[m] / pk[m], mach[m] / pk[m]);
	printf("RATIO B/A relay %.3f  process %.3f  machine %.3f\n", (cpu[1] / pk[1]) / (cpu[0] / pk[0]),
	       (proc[1] / pk[1]) / (proc[0] / pk[0]), (mach[1] / pk[1]) / (mach[0] / pk[0]));
	quit = 1;
	return 0;
}
