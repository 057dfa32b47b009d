/* npas_insn_count: a QEMU TCG plugin that counts the aarch64 instructions a compiled model
 * executes, per inference and per layer. Emulated time means nothing, executed instructions
 * are exact and deterministic, so they are how npas judges arm64 code without a phone.
 *
 *   qemu-aarch64 -plugin npas_insn_count.so,out=counts.jsonl[,mode=tb|insn] npas_bench ...
 *
 * The executor, with NPAS_PROFILE_MARKERS, runs architectural no-ops the plugin recognises:
 * HINT #125 when an inference starts, HINT #126 before every layer (so marker k starts layer k)
 * and HINT #127 after the last layer. Only instructions between #125 and #127 are attributed,
 * so start-up, weight loading and input generation never count. Marker instructions
 * themselves are never counted: they exist only when profiling.
 *
 * Counting: every translated block adds its (non-marker) instruction count to one counter
 * inline, at block entry, which costs a load, an add and a store per block. A marker gets a
 * callback that reads the counter and subtracts the instructions of its block that follow it,
 * which have been added already but not executed yet: attribution is exact at the
 * instruction, not the block. mode=insn instead adds 1 per executed instruction, a slower
 * mode that serves as an independent cross-check of the block arithmetic.
 *
 * Output, written at exit to `out` (tmp + rename; without `out`, to QEMU's log, -d plugin),
 * JSON lines: one per completed inference,
 *   {"inference": i, "total": N, "prologue": P, "layers": [n0, n1, ...]}
 * where total = prologue + sum(layers) and prologue is what the executor runs between the
 * start of the run and the first layer; then one summary line
 *   {"summary": true, "mode", "vcpus", "executed", "inferences", "incomplete", "stray_markers"}.
 *
 * The counter is shared and its inline update is not atomic, so counts are exact for a guest
 * that runs one thread (npas_bench --threads 1); the summary reports how many vCPUs (guest
 * threads) ran, so a caller can refuse counts taken with several. */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "qemu_plugin_api.h"

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

enum { MARK_BEGIN = 125, MARK_LAYER = 126, MARK_END = 127 };

static uint64_t g_count; /* non-marker instructions executed so far, all segments */
static int g_per_insn;   /* mode=insn */
static const char* g_out_path;

static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned int g_vcpus;
static uint64_t g_stray; /* #126/#127 outside an inference */
static uint64_t g_incomplete; /* #125 while an inference was open, or open at exit */

/* The inference being recorded: its start and the start of each of its layers. */
static int g_open;
static uint64_t g_begin;
static uint64_t* g_starts;
static size_t g_n_starts, g_cap_starts;

/* Finished inferences, already formatted as JSON lines. */
static char* g_text;
static size_t g_text_len, g_text_cap;
static uint64_t g_inferences;

static void die(const char* what) {
  fprintf(stderr, "npas_insn_count: %s\n", what);
  abort();
}

static void* grow(void* p, size_t* cap, size_t need, size_t elem) {
  if (need <= *cap) return p;
  size_t cap2 = *cap ? *cap : 64;
  while (cap2 < need) cap2 *= 2;
  void* q = realloc(p, cap2 * elem);
  if (q == NULL) die("out of memory");
  *cap = cap2;
  return q;
}

static void append(const char* s) {
  const size_t n = strlen(s);
  g_text = grow(g_text, &g_text_cap, g_text_len + n + 1, 1);
  memcpy(g_text + g_text_len, s, n + 1);
  g_text_len += n;
}

static void finish_inference(uint64_t end) {
  char buf[128];
  snprintf(buf, sizeof buf, "{\"inference\": %" PRIu64 ", \"total\": %" PRIu64, g_inferences,
           end - g_begin);
  append(buf);
  snprintf(buf, sizeof buf, ", \"prologue\": %" PRIu64 ", \"layers\": [",
           (g_n_starts ? g_starts[0] : end) - g_begin);
  append(buf);
  for (size_t k = 0; k < g_n_starts; ++k) {
    const uint64_t stop = k + 1 < g_n_starts ? g_starts[k + 1] : end;
    snprintf(buf, sizeof buf, "%s%" PRIu64, k ? ", " : "", stop - g_starts[k]);
    append(buf);
  }
  append("]}\n");
  ++g_inferences;
  g_open = 0;
}

/* userdata: marker kind in the high 32 bits; in the low 32, the counted instructions of the
 * marker's block after it (already added at block entry, not executed yet). */
static void on_marker(unsigned int vcpu_index, void* userdata) {
  (void)vcpu_index;
  const uintptr_t u = (uintptr_t)userdata;
  const unsigned kind = (unsigned)(u >> 32);
  const uint64_t pos = g_count - (uint32_t)u;
  pthread_mutex_lock(&g_lock);
  if (kind == MARK_BEGIN) {
    if (g_open) ++g_incomplete;
    g_open = 1;
    g_begin = pos;
    g_n_starts = 0;
  } else if (!g_open) {
    ++g_stray;
  } else if (kind == MARK_LAYER) {
    g_starts = grow(g_starts, &g_cap_starts, g_n_starts + 1, sizeof *g_starts);
    g_starts[g_n_starts++] = pos;
  } else {
    finish_inference(pos);
  }
  pthread_mutex_unlock(&g_lock);
}

static unsigned marker_kind(const struct qemu_plugin_insn* insn) {
  if (qemu_plugin_insn_size(insn) != 4) return 0;
  const unsigned char* b = qemu_plugin_insn_data(insn);
  const uint32_t word = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                        (uint32_t)b[3] << 24;  // aarch64 instructions are little-endian
  /* HINT #imm is 0xD503201F | imm << 5 (imm: 7 bits). */
  if ((word & ~(0x7Fu << 5)) != 0xD503201Fu) return 0;
  const unsigned imm = (word >> 5) & 0x7F;
  return imm >= MARK_BEGIN && imm <= MARK_END ? imm : 0;
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb* tb) {
  (void)id;
  const size_t n = qemu_plugin_tb_n_insns(tb);
  size_t counted = 0;
  /* Walk backwards so that `counted` is the number of counted instructions after i. */
  for (size_t j = n; j-- > 0;) {
    struct qemu_plugin_insn* insn = qemu_plugin_tb_get_insn(tb, j);
    const unsigned kind = marker_kind(insn);
    if (kind) {
      const uint64_t after = g_per_insn ? 0 : counted;
      qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
                                             (void*)(uintptr_t)((uint64_t)kind << 32 | after));
    } else {
      if (g_per_insn) {
        qemu_plugin_register_vcpu_insn_exec_inline(insn, QEMU_PLUGIN_INLINE_ADD_U64, &g_count, 1);
      }
      ++counted;
    }
  }
  if (!g_per_insn && counted) {
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &g_count, counted);
  }
}

static void on_vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index) {
  (void)id;
  pthread_mutex_lock(&g_lock);
  if (vcpu_index + 1 > g_vcpus) g_vcpus = vcpu_index + 1;
  pthread_mutex_unlock(&g_lock);
}

static void on_plugin_exit(qemu_plugin_id_t id, void* userdata) {
  (void)id;
  (void)userdata;
  pthread_mutex_lock(&g_lock);
  if (g_open) ++g_incomplete;
  char buf[256];
  snprintf(buf, sizeof buf,
           "{\"summary\": true, \"mode\": \"%s\", \"vcpus\": %u, \"executed\": %" PRIu64
           ", \"inferences\": %" PRIu64 ", \"incomplete\": %" PRIu64
           ", \"stray_markers\": %" PRIu64 "}\n",
           g_per_insn ? "insn" : "tb", g_vcpus, g_count, g_inferences, g_incomplete, g_stray);
  append(buf);
  if (g_out_path == NULL) {
    qemu_plugin_outs(g_text);
  } else {
    /* A reader never sees half a file: write beside it, then rename. */
    const size_t len = strlen(g_out_path) + 32;
    char* tmp = malloc(len);
    if (tmp == NULL) die("out of memory");
    snprintf(tmp, len, "%s.tmp%ld", g_out_path, (long)getpid());
    FILE* f = fopen(tmp, "wb");
    int ok = f != NULL && fwrite(g_text, 1, g_text_len, f) == g_text_len;
    if (f != NULL) ok = fclose(f) == 0 && ok;
    ok = ok && rename(tmp, g_out_path) == 0;
    if (!ok) {
      fprintf(stderr, "npas_insn_count: cannot write %s\n", g_out_path);
      remove(tmp);
    }
    free(tmp);
  }
  pthread_mutex_unlock(&g_lock);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t* info,
                                           int argc, char** argv) {
  if (info->system_emulation || strcmp(info->target_name, "aarch64") != 0) {
    fprintf(stderr, "npas_insn_count: needs qemu-aarch64 user mode, not %s%s\n",
            info->target_name, info->system_emulation ? " system emulation" : "");
    return 1;
  }
  for (int i = 0; i < argc; ++i) {
    if (strncmp(argv[i], "out=", 4) == 0) {
      g_out_path = argv[i] + 4;
    } else if (strcmp(argv[i], "mode=insn") == 0) {
      g_per_insn = 1;
    } else if (strcmp(argv[i], "mode=tb") == 0) {
      g_per_insn = 0;
    } else {
      fprintf(stderr, "npas_insn_count: unknown argument '%s' (expected out=PATH, mode=tb|insn)\n",
              argv[i]);
      return 1;
    }
  }
  qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init);
  qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
  qemu_plugin_register_atexit_cb(id, on_plugin_exit, NULL);
  return 0;
}
