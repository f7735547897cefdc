/* LD_PRELOAD shim: every TCP socket the program connects gets SO_LINGER
 * {on, 0}, so its close (or the process exiting) sends RST instead of FIN:
 * the abortive close mstsc uses at the end of a session (PROTOCOLS.md §8).
 * shutdown() on such a socket does nothing (FreeRDP shuts the socket down
 * before closing it, which would send a FIN first).
 * Built and used by scripts/lab/session-lab.sh only (Linux, lab tooling).
 *
 *   cc -shared -fPIC -O2 -o linger0.so linger0.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define MAX_FD 4096
static unsigned char lingering[MAX_FD];

int shutdown(int fd, int how) {
    typedef int (*shutdown_fn)(int, int);
    static shutdown_fn real;
    if (!real)
        real = (shutdown_fn)dlsym(RTLD_NEXT, "shutdown");
    if (fd >= 0 && fd < MAX_FD && lingering[fd])
        return 0;
    return real(fd, how);
}

int close(int fd) {
    typedef int (*close_fn)(int);
    static close_fn real;
    if (!real)
        real = (close_fn)dlsym(RTLD_NEXT, "close");
    if (fd >= 0 && fd < MAX_FD)
        lingering[fd] = 0;
    return real(fd);
}

typedef int (*connect_fn)(int, const struct sockaddr *, socklen_t);

int connect(int fd, const struct sockaddr *addr, socklen_t len) {
    static connect_fn real;
    if (!real)
        real = (connect_fn)dlsym(RTLD_NEXT, "connect");
    int type = 0;
    socklen_t tl = sizeof type;
    if (addr && (addr->sa_family == AF_INET || addr->sa_family == AF_INET6) &&
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM) {
        struct linger l = {1, 0};
        if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l) == 0 && fd < MAX_FD)
            lingering[fd] = 1;
    }
    return real(fd, addr, len);
}
