/* SPDX-License-Identifier: MIT */
/*
 * fd_channel.h - messages with at most one descriptor attached, over an
 * AF_UNIX socket: what the process pool's proxies and workers, and the
 * launcher and its fork server, say to each other (Linux).
 */
#ifndef CTH_FD_CHANNEL_H
#define CTH_FD_CHANNEL_H

#include <stddef.h>
#include <sys/types.h>

/* Send the len bytes at data and, unless fd is -1, a copy of descriptor fd
 * (SCM_RIGHTS), whole in one message; no SIGPIPE. Returns 0, or -1. */
int cth__chan_send(int sock, const void *data, size_t len, int fd);

/* Receive one message of at most len bytes into data and at most one
 * descriptor: *fd (close-on-exec), or -1 when none came. flags: 0 or
 * MSG_DONTWAIT. Returns the bytes received (0 with no descriptor: the end
 * of the stream), or -1 for an error or a malformed message (truncated, or
 * with more than one descriptor), whose descriptors are then all closed:
 * a peer is never trusted. */
ssize_t cth__chan_recv(int sock, void *data, size_t len, int *fd, int flags);

#endif
