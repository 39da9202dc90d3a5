// The few Linux calls the reactor needs that Glibc's Swift module does not export: eventfd for
// parking the reactor thread and waking producers. Kept separate from CLinux (the HTTP layer's
// epoll shim) so the reactor does not depend on the I/O layer.
#ifndef LAMINAR_REACTOR_SUPPORT_H
#define LAMINAR_REACTOR_SUPPORT_H

#include <stdint.h>

/// eventfd(0, EFD_CLOEXEC); -1 and errno on failure.
int laminar_reactor_eventfd_create(void);
/// Adds 1 to the counter; retries EINTR. Returns 0, or -errno (EAGAIN cannot happen below 2^64-2).
int laminar_reactor_eventfd_signal(int fd);
/// Waits until the counter is non-zero or `timeout_ms` passes (-1: forever), then resets it.
/// Returns 1 if signalled, 0 on timeout, -errno on error. Retries EINTR.
int laminar_reactor_eventfd_wait(int fd, int timeout_ms);

#endif
