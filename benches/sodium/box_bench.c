/* Reference figures: libsodium's crypto_box with a precomputed key, sealing and opening in
 * place with a detached tag, as the Rust benches do (benches/benches/common/raw.rs). Not part of
 * the build: scripts/bench compiles and runs it when gcc and libsodium are present.
 *
 *   gcc -O2 -o box_bench box_bench.c -lsodium && ./box_bench [sizes...]
 *
 * Prints one line per figure: "sodium-seal SIZE NS" and "sodium-open SIZE NS" (process CPU time
 * per call, best of 5 runs), then "sodium-version X". */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* The MESSAGE-style nonce of call i: a 16-byte prefix and a big-endian counter. */
static void nonce_of(unsigned char n[crypto_box_NONCEBYTES], unsigned long long i) {
    memcpy(n, "CurveZMQMESSAGEC", 16);
    for (int b = 0; b < 8; b++) n[16 + b] = (unsigned char)(i >> (56 - 8 * b));
}

int main(int argc, char **argv) {
    if (sodium_init() < 0) return 1;
    size_t sizes[16] = {100, 1024, 65536};
    int nsizes = 3;
    if (argc > 1) {
        nsizes = 0;
        for (int a = 1; a < argc && nsizes < 16; a++) sizes[nsizes++] = strtoul(argv[a], 0, 10);
    }
    /* The benches' keys: client secret 9×32, server secret 7×32. */
    unsigned char csk[32], ssk[32], spk[32], k[crypto_box_BEFORENMBYTES];
    memset(csk, 9, 32);
    memset(ssk, 7, 32);
    crypto_scalarmult_base(spk, ssk);
    if (crypto_box_beforenm(k, spk, csk) != 0) return 1;

    for (int s = 0; s < nsizes; s++) {
        size_t size = sizes[s];
        unsigned long long iters = 20000000ULL / (size + 200) + 200;
        unsigned char *buf = malloc(size ? size : 1);
        unsigned char mac[crypto_box_MACBYTES], n[crypto_box_NONCEBYTES];
        for (size_t i = 0; i < size; i++) buf[i] = (unsigned char)(i % 251);
        double best_seal = 1e30, best_open = 1e30;
        for (int run = 0; run < 5; run++) {
            double t = cpu_ns();
            for (unsigned long long i = 0; i < iters; i++) {
                nonce_of(n, i);
                crypto_box_detached_afternm(buf, mac, buf, size, n, k);
            }
            double seal = (cpu_ns() - t) / iters;
            if (seal < best_seal) best_seal = seal;
            /* Seal + open pairs; open = pair - seal. */
            t = cpu_ns();
            for (unsigned long long i = 0; i < iters; i++) {
                nonce_of(n, i);
                crypto_box_detached_afternm(buf, mac, buf, size, n, k);
                if (crypto_box_open_detached_afternm(buf, buf, mac, size, n, k) != 0) return 2;
            }
            double open = (cpu_ns() - t) / iters - seal;
            if (open < best_open) best_open = open;
        }
        printf("sodium-seal %zu %.1f\n", size, best_seal);
        printf("sodium-open %zu %.1f\n", size, best_open);
        free(buf);
    }
    printf("sodium-version %s\n", sodium_version_string());
    return 0;
}
