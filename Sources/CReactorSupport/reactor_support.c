#include "reactor_support.h"

#include <errno.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

int laminar_reactor_eventfd_create(void) {
    return eventfd(0, EFD_CLOEXEC);
}

int laminar_reactor_eventfd_signal(int fd) {
    uint64_t one = 1;
    for (;;) {
        ssize_t n = write(fd, &one, sizeof one);
        if (n == (ssize_t)sizeof one) return 0;
        if (n < 0 && errno == EINTR) continue;
        return n < 0 ? -errno : -EIO;
    }
}

int laminar_reactor_eventfd_wait(int fd, int timeout_ms) {
    struct pollfd pfd = {.fd = fd, .events = POLLIN, .revents = 0};
    for (;;) {
        int r = poll(&pfd, 1, timeout_ms);
        if (r < 0 && errno == EINTR) continue;  // a signal; the caller re-checks its rings anyway
        if (r < 0) return -errno;
        if (r == 0) return 0;
        break;
    }
    uint64_t value;
    for (;;) {
        ssize_t n = read(fd, &value, sizeof value);
        if (n == (ssize_t)sizeof value) return 1;
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return 1;  // raced with another reader; still a wake-up
        return n < 0 ? -errno : -EIO;
    }
}
