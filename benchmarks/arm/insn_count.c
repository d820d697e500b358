/*
 * insn_count: a QEMU TCG plugin that counts guest instructions between two markers.
 *
 * The guest marks a region by write(2) calls to /dev/null of two unusual lengths
 * (START_LEN before, STOP_LEN after): calls that succeed, so the guest has no error to
 * handle inside the measured region.
 * For every START/STOP pair the plugin appends one line "<instructions>\n" to the file
 * given as `out=PATH`. The count is a property of the code path alone, not of the host
 * machine or its load, so the same model and input give the same number every run.
 *
 * Counting is inline (an add per executed translation block, no helper call), so the
 * slow-down over plain emulation is small. The counter is shared by all vCPUs: measure
 * single-threaded code (num_threads=1), as edgepose does.
 *
 * Build: gcc -O2 -shared -fPIC -I<dir of qemu-plugin.h> -o insn_count.so insn_count.c
 * Run:   qemu-aarch64 -plugin ./insn_count.so,out=counts.txt ...
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

/* Keep in sync with edgepose/arm/guest.py. */
#define START_LEN 32470
#define STOP_LEN 32471

static uint64_t executed;  /* instructions executed since the plugin was loaded */
static uint64_t started;   /* `executed` at the last START marker */
static int inside;
static FILE *out;

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                       uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                       uint64_t a6, uint64_t a7, uint64_t a8)
{
    /* 64 is write(2) on aarch64 (asm-generic syscall table). */
    if (num != 64) {
        return;
    }
    if (a3 == START_LEN) {
        started = executed;
        inside = 1;
    } else if (a3 == STOP_LEN && inside) {
        fprintf(out, "%" PRIu64 "\n", executed - started);
        fflush(out);
        inside = 0;
    }
}

static void on_tb_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed,
                                             qemu_plugin_tb_n_insns(tb));
}

static void on_plugin_exit(qemu_plugin_id_t id, void *userdata)
{
    fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strncmp(argv[i], "out=", 4) == 0) {
            path = argv[i] + 4;
        }
    }
    if (path == NULL) {
        fprintf(stderr, "insn_count: missing argument out=PATH\n");
        return -1;
    }
    out = fopen(path, "w");
    if (out == NULL) {
        perror(path);
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb_translate);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
    return 0;
}
