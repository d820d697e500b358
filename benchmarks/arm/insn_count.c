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
 * Optional `profile=PATH`: also count executions per translation block (TB) inside the
 * marked region and, at every STOP, rewrite PATH with one line per executed TB:
 *     <start pc, hex> <instructions in the TB> <executions> <per-class instructions...>
 * where the classes (CLASSES below, by mnemonic from qemu_plugin_insn_disas) are
 * counted statically per TB, followed by the TB's multiply-accumulate lanes (int,
 * float: e.g. `sdot v0.4s` = 16 int8 MACs, `smlal v0.4s` = 4, `fmla v0.4s` = 4).
 * The host maps the pcs to symbols of the guest's shared libraries (it knows the
 * guest's /proc/self/maps); QEMU's own qemu_plugin_insn_symbol only knows the ELF
 * files QEMU loaded itself (python3, ld.so), not dlopen()ed ones.
 *
 * Build: gcc -O2 -shared -fPIC -I<dir of qemu-plugin.h> -o insn_count.so insn_count.c
 * Run:   qemu-aarch64 -plugin ./insn_count.so,out=counts.txt[,profile=tbs.txt] ...
 */
#include <inttypes.h>
#include <pthread.h>
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

/* Profiling (profile=PATH): one record per translated block. */
enum insn_class {
    C_INT_DOT,    /* sdot/udot/usdot: 4 int8 products per 32-bit lane */
    C_INT_MLAL,   /* smlal/smull/umlal/umull(2), smlsl: widening multiply(-accumulate) */
    C_INT_MLA,    /* mla/mls/mul (vector, same width) */
    C_INT_WIDEN,  /* sadalp/uadalp/saddw/sxtl/...: widening adds and moves */
    C_REQUANT,    /* sqrdmulh/sqdmulh/srshl/sqrshl/sqxtn/...: fixed-point requantization */
    C_FP_FMA,     /* fmla/fmls (vector or by element), fmadd/fmsub (scalar) */
    C_FP_OTHER,   /* other float arithmetic and conversions (fmul, fadd, fmax, fcvt, scvtf) */
    C_LOAD,       /* ld1..ld4, ldr/ldp of q/d/s registers (SIMD loads) */
    C_STORE,      /* st1..st4, str/stp of q/d/s registers (SIMD stores) */
    C_SIMD_OTHER, /* any other instruction on v registers */
    C_SCALAR,     /* general-purpose instructions: loop control, address arithmetic... */
    N_CLASSES
};

typedef struct {
    uint64_t pc;
    uint64_t execs;
    uint32_t n_insns;
    uint32_t classes[N_CLASSES];
    uint32_t int_macs;
    uint32_t fp_macs;
} TbRecord;

static const char *profile_path;
static TbRecord **records;
static size_t n_records, cap_records;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static int starts_with_any(const char *m, const char *const *list)
{
    for (; *list; list++) {
        if (strncmp(m, *list, strlen(*list)) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Lanes of the destination register from its arrangement ("v0.4s" -> 4), 1 for scalars. */
static unsigned dest_lanes(const char *ops)
{
    const char *dot = strchr(ops, '.');
    const char *comma = strchr(ops, ',');
    if (ops[0] != 'v' || dot == NULL || (comma && dot > comma)) {
        return 1;
    }
    return (unsigned)strtoul(dot + 1, NULL, 10);
}

/*
 * The dot-product instructions by encoding (Arm ARM, "Advanced SIMD three same (extra)" and
 * "vector x indexed element"): the disassembler QEMU 7.2 links (capstone 4) predates
 * ARMv8.2 and prints them as ".byte ...". Returns the int8 MACs (4 per 32-bit lane:
 * Q=1 -> 4S = 16, Q=0 -> 2S = 8), or 0 if `insn` is not SDOT/UDOT.
 */
static unsigned dot_macs(uint32_t insn)
{
    int vector = (insn & 0x9FE0FC00u) == 0x0E809400u;
    int element = (insn & 0x9FC0F400u) == 0x0F80E000u;
    if (!vector && !element) {
        return 0;
    }
    return (insn & (1u << 30)) ? 16 : 8;
}

static void classify(const char *text, uint32_t insn, TbRecord *r)
{
    unsigned macs = dot_macs(insn);
    if (macs) {
        r->classes[C_INT_DOT]++;
        r->int_macs += macs;
        return;
    }
    static const char *const dot[] = {"sdot", "udot", "usdot", "sudot", NULL};
    static const char *const mlal[] = {"smlal", "umlal", "smull", "umull", "smlsl", "umlsl",
                                       NULL};
    static const char *const mla[] = {"mla ", "mls ", "mul ", NULL};
    static const char *const widen[] = {"sadalp", "uadalp", "saddw", "uaddw", "saddl", "uaddl",
                                        "sxtl", "uxtl", "sshll", "ushll", "saddlp", "uaddlp",
                                        "addp", NULL};
    static const char *const requant[] = {"sqrdmulh", "sqdmulh", "srshl", "sqrshl", "sqshl",
                                          "urshl", "srshr", "sqxtn", "sqxtun", "uqxtn",
                                          "sqadd", "sqrshrn", "sqshrn", "sqrshrun", NULL};
    static const char *const fma[] = {"fmla", "fmls", "fmadd", "fmsub", "fnmadd", "fnmsub",
                                      NULL};
    static const char *const load[] = {"ld1", "ld2", "ld3", "ld4", NULL};
    static const char *const store[] = {"st1", "st2", "st3", "st4", NULL};
    char mnemonic[16];
    size_t n = strcspn(text, " \t");
    const char *ops = text + n;
    while (*ops == ' ' || *ops == '\t') {
        ops++;
    }
    snprintf(mnemonic, sizeof(mnemonic), "%.*s ", (int)(n < 14 ? n : 14), text);
    int simd = strstr(ops, "v") == ops || strstr(ops, ", v") != NULL;
    int fpreg = simd || ops[0] == 'q' || ops[0] == 'd' || ops[0] == 's' || ops[0] == 'h';
    enum insn_class c;
    if (starts_with_any(mnemonic, dot)) {
        c = C_INT_DOT;
        r->int_macs += 4 * dest_lanes(ops);
    } else if (simd && starts_with_any(mnemonic, mlal)) {
        c = C_INT_MLAL;
        r->int_macs += dest_lanes(ops);
    } else if (simd && starts_with_any(mnemonic, mla)) {
        c = C_INT_MLA;
        r->int_macs += dest_lanes(ops);
    } else if (starts_with_any(mnemonic, widen) && simd) {
        c = C_INT_WIDEN;
    } else if (starts_with_any(mnemonic, requant)) {
        c = C_REQUANT;
    } else if (starts_with_any(mnemonic, fma)) {
        c = C_FP_FMA;
        r->fp_macs += dest_lanes(ops);
    } else if (mnemonic[0] == 'f' || strncmp(mnemonic, "scvtf", 5) == 0
               || strncmp(mnemonic, "ucvtf", 5) == 0) {
        c = C_FP_OTHER;
    } else if (starts_with_any(mnemonic, load) || (strncmp(mnemonic, "ld", 2) == 0 && fpreg)) {
        c = C_LOAD;
    } else if (starts_with_any(mnemonic, store) || (strncmp(mnemonic, "st", 2) == 0 && fpreg)) {
        c = C_STORE;
    } else if (simd) {
        c = C_SIMD_OTHER;
    } else {
        c = C_SCALAR;
    }
    r->classes[c]++;
}

static void write_profile(void)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", profile_path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        perror(tmp);
        return;
    }
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_records; i++) {
        TbRecord *r = records[i];
        if (r->execs == 0) {
            continue;
        }
        fprintf(f, "%" PRIx64 " %u %" PRIu64, r->pc, r->n_insns, r->execs);
        for (int c = 0; c < N_CLASSES; c++) {
            fprintf(f, " %u", r->classes[c]);
        }
        fprintf(f, " %u %u\n", r->int_macs, r->fp_macs);
    }
    pthread_mutex_unlock(&lock);
    fclose(f);
    rename(tmp, profile_path);
}

static void reset_profile(void)
{
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < n_records; i++) {
        records[i]->execs = 0;
    }
    pthread_mutex_unlock(&lock);
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu_index, int64_t num,
                       uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5,
                       uint64_t a6, uint64_t a7, uint64_t a8)
{
    /* 64 is write(2) on aarch64 (asm-generic syscall table). */
    if (num != 64) {
        return;
    }
    if (a3 == START_LEN) {
        if (profile_path) {
            reset_profile();
        }
        started = executed;
        inside = 1;
    } else if (a3 == STOP_LEN && inside) {
        fprintf(out, "%" PRIu64 "\n", executed - started);
        fflush(out);
        inside = 0;
        if (profile_path) {
            write_profile();  /* the last region wins: every counted invoke is the same */
        }
    }
}

static void on_tb_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, n);
    if (profile_path == NULL) {
        return;
    }
    TbRecord *r = calloc(1, sizeof(TbRecord));
    r->pc = qemu_plugin_tb_vaddr(tb);
    r->n_insns = (uint32_t)n;
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint32_t word = 0;
        if (qemu_plugin_insn_size(insn) == 4) {
            memcpy(&word, qemu_plugin_insn_data(insn), 4);  /* A64: one little-endian word */
        }
        char *text = qemu_plugin_insn_disas(insn);
        classify(text ? text : "", word, r);
        free(text);
    }
    pthread_mutex_lock(&lock);
    if (n_records == cap_records) {
        cap_records = cap_records ? 2 * cap_records : 4096;
        records = realloc(records, cap_records * sizeof(TbRecord *));
    }
    records[n_records++] = r;  /* records never move: the inline counter points into r */
    pthread_mutex_unlock(&lock);
    /* Counts every execution; the START marker zeroes them, so a profile is one region. */
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &r->execs, 1);
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
        } else if (strncmp(argv[i], "profile=", 8) == 0) {
            profile_path = argv[i] + 8;
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
