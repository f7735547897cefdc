/* LD_PRELOAD shim: every SSL_CTX the program makes writes its TLS secrets
 * in the NSS key-log format (RFC 9850) to the file named by
 * RDPSIFT_KEYLOG, through OpenSSL's own SSL_CTX_set_keylog_callback. For
 * OpenSSL programs with no key-log option of their own (FreeRDP's client
 * and shadow server, xrdp). Lab tooling (Linux), built by
 * scripts/lab/session-lab.sh:
 *
 *   cc -shared -fPIC -O2 -o keylog.so keylog.c -ldl -lssl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>

static void write_line(const SSL *ssl, const char *line) {
    (void)ssl;
    const char *path = getenv("RDPSIFT_KEYLOG");
    if (!path || !*path)
        return;
    FILE *f = fopen(path, "a");
    if (!f)
        return;
    fprintf(f, "%s\n", line);
    fclose(f);
}

SSL_CTX *SSL_CTX_new(const SSL_METHOD *method) {
    typedef SSL_CTX *(*new_fn)(const SSL_METHOD *);
    static new_fn real;
    if (!real)
        real = (new_fn)dlsym(RTLD_NEXT, "SSL_CTX_new");
    SSL_CTX *ctx = real ? real(method) : NULL;
    if (ctx)
        SSL_CTX_set_keylog_callback(ctx, write_line);
    return ctx;
}

SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *method) {
    typedef SSL_CTX *(*new_fn)(OSSL_LIB_CTX *, const char *, const SSL_METHOD *);
    static new_fn real;
    if (!real)
        real = (new_fn)dlsym(RTLD_NEXT, "SSL_CTX_new_ex");
    SSL_CTX *ctx = real ? real(libctx, propq, method) : NULL;
    if (ctx)
        SSL_CTX_set_keylog_callback(ctx, write_line);
    return ctx;
}
