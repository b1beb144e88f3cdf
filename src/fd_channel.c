/* SPDX-License-Identifier: MIT */
/*
 * fd_channel.c - messages with one descriptor attached (fd_channel.h): the
 * bytes in one iovec, the descriptor as SCM_RIGHTS control data. Received
 * descriptors are close-on-exec from the start (MSG_CMSG_CLOEXEC), so none
 * leaks into a child the program starts meanwhile; a receiver that got
 * more than it asked for closes it all rather than trust any of it.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fd_channel.h"

#define MAX_FDS 4 /* room to receive (and close) a few more than one */

int cth__chan_send(int sock, const void *data, size_t len, int fd)
{
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        mh.msg_control = control.buf;
        mh.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    ssize_t n;
    while ((n = sendmsg(sock, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
        ;
    return n == (ssize_t)len ? 0 : -1;
}

ssize_t cth__chan_recv(int sock, void *data, size_t len, int *fd, int flags)
{
    struct iovec iov = {.iov_base = data, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = control.buf,
                        .msg_controllen = sizeof control.buf};
    ssize_t n;
    while ((n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags)) < 0 && errno == EINTR)
        ;
    *fd = -1;
    int nfds = 0;
    for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int got;
            memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof got);
            if (nfds++ == 0)
                *fd = got;
            else
                close(got);
        }
    }
    if (n >= 0 && nfds <= 1 && !(mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && !(n == 0 && nfds))
        return n;
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
    return -1;
}
