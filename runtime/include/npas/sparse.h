// Helpers of the sparse convolution kernels (pattern, block-punched, block, unstructured):
// integer tables read from the weight blobs, a pruned kernel's weights in registers, the
// gathered-row GEMM tile of the block kernels, work splitting by a prefix of per-item costs,
// and the epilogue stores of register tiles.
#ifndef NPAS_SPARSE_H_
#define NPAS_SPARSE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "npas/gemm.h"
#include "npas/simd.h"

// Keep a loaded vector in a register: compilers otherwise fold each use into its FMA as a
// memory operand, re-loading a vector that several FMAs share (load-redundancy elimination
// undone, and the loads, not the FMAs, bound the kernel).
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define NPAS_IN_REGISTER(x) __asm__("" : "+v"(x))
#elif defined(__GNUC__) && defined(__aarch64__)
#define NPAS_IN_REGISTER(x) __asm__("" : "+w"(x))
#else
#define NPAS_IN_REGISTER(x) (void)(x)
#endif

namespace npas {
namespace sparse {

// Index tables travel in weights.bin beside the float blobs, bit for bit; may_alias makes
// reading them through an int pointer well defined.
typedef std::int32_t __attribute__((may_alias)) i32a;

NPAS_INLINE const i32a* ints(const float* p) { return reinterpret_cast<const i32a*>(p); }

// The E weights of one pruned kernel, ready to multiply input vectors: broadcast into E
// registers, or, where the ISA has FMA by lane (NEON), loaded as ceil(E / L) vectors whose
// lanes the FMAs index (the weight blob carries L floats of slack after its last kernel).
template <class V, int E>
struct KernelWeights {
  using vec = typename V::vec;
  static constexpr int L = V::kLanes;
  static constexpr bool kLanes = V::kLaneFma;
  static constexpr int kRegs = kLanes ? (E + L - 1) / L : E;
  vec r[kRegs];

  NPAS_INLINE explicit KernelWeights(const float* w) {
#pragma GCC unroll 16
    for (int i = 0; i < kRegs; ++i) r[i] = kLanes ? V::load(w + i * L) : V::set1(w[i]);
  }

  // acc + x * w[e]
  template <int e>
  NPAS_INLINE vec fma(vec x, vec acc) const {
    if constexpr (kLanes) {
      return V::template fmadd_lane<e % L>(x, r[e / L], acc);
    } else {
      return V::fmadd(r[e], x, acc);
    }
  }
};

// Chunk j of `chunks` over items [0, n) with cumulative costs prefix[0..n] (prefix[0] = 0):
// [*b0, *b1) holds about 1/chunks of the total cost. Consecutive chunks tile [0, n).
NPAS_INLINE void balanced_range(const i32a* prefix, int n, int chunks, int j, int* b0, int* b1) {
  auto cut = [&](int i) -> int {
    if (i <= 0) return 0;
    if (i >= chunks) return n;
    // Cost of an item: its prefix difference plus one (an empty item still costs a visit).
    const std::int64_t total = static_cast<std::int64_t>(prefix[n]) + n;
    const std::int64_t want = total * i / chunks;
    int lo = 0, hi = n;  // first item index m with prefix[m] + m >= want
    while (lo < hi) {
      const int mid = (lo + hi) / 2;
      if (static_cast<std::int64_t>(prefix[mid]) + mid < want) lo = mid + 1; else hi = mid;
    }
    return lo;
  };
  *b0 = cut(j);
  *b1 = cut(j + 1);
}

// Store rows [0, rows) and columns [0, cols) of a register tile acc[R][U] (rows `ld` floats
// apart in y and res), with the rest of the epilogue on the way: residual add, activation.
// The bias is in the accumulators already.
template <class V, int R, int U, bool kRes, class Act>
NPAS_INLINE void store_tile(typename V::vec (&acc)[R][U], float* y, const float* res,
                            std::ptrdiff_t ld, int rows, int cols) {
  using vec = typename V::vec;
  constexpr int L = V::kLanes;
  if (rows == R && cols >= U * L) {
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
#pragma GCC unroll 16
      for (int u = 0; u < U; ++u) {
        vec v = acc[r][u];
        if constexpr (kRes) v = V::add(v, V::load(res + r * ld + u * L));
        V::store(y + r * ld + u * L, Act::template apply<V>(v));
      }
    }
    return;
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
    if (r >= rows) break;
#pragma GCC unroll 16
    for (int u = 0; u < U; ++u) {
      const int n = std::min(L, cols - u * L);
      if (n <= 0) break;
      vec v = acc[r][u];
      if constexpr (kRes) {
        const float* rr = res + r * ld + u * L;
        v = V::add(v, n == L ? V::load(rr) : V::load_partial(rr, n));
      }
      v = Act::template apply<V>(v);
      if (n == L) V::store(y + r * ld + u * L, v); else V::store_partial(y + r * ld + u * L, v, n);
    }
  }
  (void)res;
}

// Store `nq` finished q-space columns (q = oy * Wq + ox over plane-wide rows) starting at q0,
// one output row segment at a time; columns with ox >= OW are dropped. `ct` holds the tile
// row (bias included; plus L floats of slack).
template <class V, bool kRes, class Act>
NPAS_INLINE void store_q(const float* ct, int q0, int nq, int Wq, int OW, float* y,
                         const float* res) {
  constexpr int L = V::kLanes;
  for (int q = q0; q < q0 + nq;) {
    const int oy = q / Wq, ox = q - oy * Wq;
    const int run = std::min(Wq - ox, q0 + nq - q);
    const int len = std::min(run, OW - ox);
    if (len > 0) {
      const std::ptrdiff_t p = static_cast<std::ptrdiff_t>(oy) * OW + ox;
      const float* src = ct + (q - q0);
      for (int c = 0; c < len; c += L) {
        const int n = std::min(L, len - c);
        typename V::vec v = V::load(src + c);
        if constexpr (kRes) v = V::add(v, V::load_partial(res + p + c, n));
        v = Act::template apply<V>(v);
        if (n == L) V::store(y + p + c, v); else V::store_partial(y + p + c, v, n);
      }
    }
    q += run;
  }
  (void)res;
}

// The GEMM tile of a block kernel: acc[MR][NV] = bias + A[kc x MR] (k-major) * B, where B row
// k is the NR floats at base + koff[k] * scale (an input row of one kept (channel, position)
// pair, read in place).
template <class V, int MR, int NV>
NPAS_INLINE void gather_tile(typename V::vec (&acc)[MR][NV], int kc, const float* __restrict a,
                             const float* base, const i32a* __restrict koff,
                             std::ptrdiff_t scale, const float* bias) {
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    const typename V::vec b = V::set1(bias[i]);
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = b;
  }
  gemm::kloop<V, MR, NV>(acc, kc, a, [base, koff, scale](int k) { return base + koff[k] * scale; });
}

}  // namespace sparse
}  // namespace npas

#endif  // NPAS_SPARSE_H_
