/* SPDX-License-Identifier: MIT */
/*
 * synchronized_singleton.c - the seed's @synchronized decorator and its
 * locked Singleton: a counter no thread update is lost from, two functions
 * sharing one named lock, and a configuration made once however many
 * threads ask for it at the same moment. Python:
 *
 *     @synchronized
 *     def hit(): global hits; hits += 1
 *     class Config(metaclass=Singleton): ...
 */
#include <stdio.h>

#include <cthreading.h>

#define THREADS 4
#define CALLS 100000

static long hits, balance;
static cth_lock_t account = CTH_LOCK_INIT; /* @synchronized(lock): one lock, two functions */
static int constructed;
static cth_singleton_t config = CTH_SINGLETON_INIT;
static void *seen[THREADS];

static void hit(void)
{
    CTH_SYNCHRONIZED { /* this block's own lock */
        hits++;
    }
}

static void deposit(long n)
{
    CTH_SYNCHRONIZED_ON(&account) {
        balance += n;
    }
}

static void withdraw(long n)
{
    CTH_SYNCHRONIZED_ON(&account) {
        balance -= n;
    }
}

static int make_config(void *arg, void **instance)
{
    static char settings[64];
    snprintf(settings, sizeof settings, "%s", (const char *)arg);
    constructed++; /* the singleton runs this once: no lock needed */
    *instance = settings;
    return 0;
}

static void *worker(void *arg)
{
    cth_singleton_get(&config, make_config, "debug=off", &seen[(long)arg]);
    for (int i = 0; i < CALLS; i++) {
        hit();
        deposit(3);
        withdraw(2);
    }
    return NULL;
}

int main(void)
{
    cth_thread_t *t[THREADS];
    for (long i = 0; i < THREADS; i++) {
        cth_thread_create(&t[i], worker, (void *)i, NULL);
        cth_thread_start(t[i]);
    }
    for (int i = 0; i < THREADS; i++) {
        cth_thread_join(t[i], NULL, CTH_FOREVER);
        cth_thread_free(t[i]);
    }
    printf("%d threads x %d calls: hits = %ld, balance = %ld\n", THREADS, CALLS, hits, balance);
    int same = 1;
    for (int i = 1; i < THREADS; i++)
        same &= seen[i] == seen[0];
    printf("singleton: constructed %d time, every thread got %s instance: \"%s\"\n", constructed,
           same ? "the same" : "a DIFFERENT", (const char *)seen[0]);
    return 0;
}
