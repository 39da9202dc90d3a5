// CLinux: the Linux system calls and constants Glibc does not export to Swift
// (epoll, eventfd, accept4, TCP_NODELAY, SO_REUSEPORT), for the HTTP loops and the reactor. Wrappers are prefixed CLinux_ and do no
// error handling: errno is read on the Swift side (LaminarHTTP/System.swift).
#ifndef LAMINAR_CLINUX_H
#define LAMINAR_CLINUX_H

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include "CLinuxBlockPool.h"

/// Starts loading the cache line at `p` (no fault if `p` is not mapped): the reactor's key table
/// looks up keys a few events ahead of using them (LaminarReactor/KeyInterner.swift).
static inline void CLinux_prefetch(const void *p) { __builtin_prefetch(p); }
/// The same, for a line about to be written (PREFETCHW: fetched for ownership, so the write does
/// not wait for another core to give the line up), e.g. a reference count another thread touched.
static inline void CLinux_prefetch_write(const void *p) { __builtin_prefetch(p, 1); }

/// Atomic loads and stores of a word in plain memory (LaminarStore/ConcurrentReader.swift: the
/// hash table's slots and the write slots, read by I/O threads while the store's writer changes
/// them). On x86-64 each is a plain `mov`; the orderings only bind the compiler (and TSan).
static inline uint64_t CLinux_load_relaxed(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline uint64_t CLinux_load_acquire(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void CLinux_store_relaxed(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELAXED); }
static inline void CLinux_store_release(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
/// A spin-wait hint (PAUSE on x86-64).
static inline void CLinux_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

int CLinux_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
/// epoll_create1(EPOLL_CLOEXEC).
int CLinux_epoll_create(void);
/// Registers, modifies or removes `fd` with `events`, carrying `data` back in epoll_wait.
int CLinux_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
/// epoll_wait that returns the ready (events, data) pairs in two plain arrays.
int CLinux_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms);
/// CLinux_epoll_wait with a timeout in nanoseconds (negative: none), through epoll_pwait2
/// (Linux 5.11+; before, rounded up to whole milliseconds).
int CLinux_epoll_wait_ns(int epfd, uint32_t *events, uint64_t *data, int max, int64_t timeout_ns);
/// prctl(PR_SET_TIMERSLACK): how late the kernel may end this thread's timed waits (default 50 us).
int CLinux_set_timer_slack_ns(unsigned long ns);
/// Names the calling thread (prctl PR_SET_NAME, 15 bytes kept): what top -H, perf and /proc show.
int CLinux_set_thread_name(const char *name);
/// sync_file_range(SYNC_FILE_RANGE_WRITE): starts writing the dirty pages of a file range to disk,
/// without waiting. Durability still needs an fdatasync (no metadata, no device cache flush):
/// this only paces a big writer's writeback (LaminarStore/DataFileWriter.swift). 0 or -errno.
int CLinux_start_writeback(int fd, int64_t offset, int64_t length);
/// The same, waiting until the range's pages are written (retries EINTR). 0 or -errno.
int CLinux_wait_writeback(int fd, int64_t offset, int64_t length);
/// Asks the scheduler (EEVDF, Linux 6.12+: sched_setattr's sched_runtime for SCHED_OTHER, no
/// privilege needed) for time slices of `ns` (0.1 to 100 ms) for the calling thread, keeping its
/// nice value: a shorter slice does not give a thread more CPU; it may get it sooner (an earlier
/// virtual deadline; a waking thread with a shorter slice may preempt the running one). Returns 0
/// or -errno.
int CLinux_set_sched_slice_ns(uint64_t ns);
/// eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC).
int CLinux_eventfd(void);
/// Adds 1 to an eventfd's counter (EAGAIN at saturation is harmless: it is already signalled).
void CLinux_eventfd_signal(int fd);
/// Resets an eventfd's counter.
void CLinux_eventfd_drain(int fd);
/// Waits until the eventfd is signalled or `timeout_ms` passes (-1: forever), then resets it.
/// Returns 1 if signalled, 0 on timeout, -errno on error. Retries EINTR.
int CLinux_eventfd_wait(int fd, int timeout_ms);

// Constants that import badly (macros of enums) as plain ints.
static const int CLinux_SOCK_NONBLOCK = SOCK_NONBLOCK;
static const int CLinux_SOCK_CLOEXEC = SOCK_CLOEXEC;
static const uint32_t CLinux_EPOLLIN = EPOLLIN;
static const uint32_t CLinux_EPOLLOUT = EPOLLOUT;
static const uint32_t CLinux_EPOLLRDHUP = EPOLLRDHUP;
static const uint32_t CLinux_EPOLLHUP = EPOLLHUP;
static const uint32_t CLinux_EPOLLERR = EPOLLERR;
static const int CLinux_EPOLL_CTL_ADD = EPOLL_CTL_ADD;
static const int CLinux_EPOLL_CTL_MOD = EPOLL_CTL_MOD;
static const int CLinux_EPOLL_CTL_DEL = EPOLL_CTL_DEL;
static const int CLinux_TCP_NODELAY = TCP_NODELAY;
static const int CLinux_SO_REUSEPORT = SO_REUSEPORT;

#endif
