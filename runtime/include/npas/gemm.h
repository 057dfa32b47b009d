// Register-blocked GEMM micro-kernel shared by every GEMM-shaped kernel (conv, grouped conv,
// dense, matmul, conv-transpose), plus the helpers that pack activations into its panels.
//
// C[MR x NR] (+)= A[K x MR] * B[K x NR], where A is packed k-major (MR floats per k) and B
// rows (NR = NV vectors used per k) are ldb floats apart. The accumulators stay in registers
// for the whole K loop; the epilogue (bias, residual add, activation) runs on them before the single store.
// MR and NV are template parameters so every generated kernel instantiates exactly the tiles
// its shape needs (a main tile plus the M and N remainders, all known at compile time).
#ifndef NPAS_GEMM_H_
#define NPAS_GEMM_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "npas/simd.h"

namespace npas {
namespace gemm {

enum BiasMode { kNoBias = 0, kBiasRow = 1, kBiasCol = 2 };

// Software prefetch distance (bytes) on the packed A stream. Weights of the late, narrow layers
// of a CNN (7x7 outputs) come from DRAM once per inference at ~2 bytes/cycle at full FMA rate;
// the hardware prefetcher alone falls behind there.
#ifndef NPAS_PREFETCH_A_BYTES
#define NPAS_PREFETCH_A_BYTES 2048
#endif

NPAS_INLINE void prefetch(const void* p) {
#if defined(__GNUC__)
  __builtin_prefetch(p, 0, 3);
#endif
}

// One k step of the register tile: acc[i][j] += a[i] * b[j*L .. j*L + L), where A arrives
// either as MR floats (broadcast per row: x86's vbroadcastss folds into the FMA's memory
// operand) or, where the ISA has an FMA by vector lane (NEON's FMLA by element) and the rows
// fill whole vectors, as MR/L vectors whose lanes the FMAs index: MR/L loads instead of MR
// broadcasts, which leaves the step at its minimum (A loads + B loads + MR*NV FMAs).
template <class V, int MR, int NV, int I>
NPAS_INLINE void lane_row(typename V::vec (&acc)[MR][NV], const typename V::vec* bv,
                          typename V::vec av) {
#pragma GCC unroll 8
  for (int j = 0; j < NV; ++j) {
    acc[I][j] = V::template fmadd_lane<I % V::kLanes>(bv[j], av, acc[I][j]);
  }
}

template <class V, int MR, int NV, int... I>
NPAS_INLINE void lane_rows(typename V::vec (&acc)[MR][NV], const typename V::vec* bv,
                           const typename V::vec* av, std::integer_sequence<int, I...>) {
  (lane_row<V, MR, NV, I>(acc, bv, av[I / V::kLanes]), ...);
}

template <class V, int MR>
constexpr bool kUseLanes = V::kLaneFma && MR % V::kLanes == 0;

template <class V, int MR, int NV>
NPAS_INLINE void step(typename V::vec (&acc)[MR][NV], const float* __restrict a,
                      const typename V::vec* av, const float* __restrict b) {
  using vec = typename V::vec;
  vec bv[NV];
  V::template load_n<NV>(b, bv);
  if constexpr (kUseLanes<V, MR>) {
    lane_rows<V, MR, NV>(acc, bv, av, std::make_integer_sequence<int, MR>());
  } else {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const vec ai = V::set1(a[i]);
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = V::fmadd(ai, bv[j], acc[i][j]);
    }
  }
}

// The K loop of a tile: acc += A[kc x MR] (packed k-major) * B, B row k at brow(k). With lane
// FMAs and at most one cache line of A per two k steps (MR <= 8), two steps per iteration:
// one prefetch per line and half the loop overhead, since aarch64 code is judged by executed
// instructions per MAC. (A is loaded as plain vectors there: GCC keeps two multi-register
// loads of A in flight only by spilling accumulators.) x86 keeps one step per iteration.
template <class V, int MR, int NV, class BRow>
NPAS_INLINE void kloop(typename V::vec (&acc)[MR][NV], int kc, const float* __restrict a,
                       BRow brow) {
  using vec = typename V::vec;
  constexpr int L = V::kLanes;
  constexpr bool kLanes = kUseLanes<V, MR>;
  constexpr int AV = kLanes ? MR / L : 1;  // A vectors per k step
  int k = 0;
  if constexpr (kLanes && 2 * MR * sizeof(float) <= 64) {
    for (; k + 2 <= kc; k += 2) {
      if (NPAS_PREFETCH_A_BYTES > 0) prefetch(reinterpret_cast<const char*>(a) + NPAS_PREFETCH_A_BYTES);
      vec av[2 * AV];
#pragma GCC unroll 8
      for (int q = 0; q < 2 * AV; ++q) av[q] = V::load(a + q * L);
      step<V, MR, NV>(acc, a, av, brow(k));
      step<V, MR, NV>(acc, a + MR, av + AV, brow(k + 1));
      a += 2 * MR;
    }
    if (k < kc) {
      vec av[AV];
      V::template load_n<AV>(a, av);
      step<V, MR, NV>(acc, a, av, brow(k));
    }
  } else {
    for (; k < kc; ++k) {
      if (NPAS_PREFETCH_A_BYTES > 0) prefetch(reinterpret_cast<const char*>(a) + NPAS_PREFETCH_A_BYTES);
      vec av[AV];
      if constexpr (kLanes) V::template load_n<AV>(a, av);
      step<V, MR, NV>(acc, a, av, brow(k));
      a += MR;
    }
  }
}

struct NoAct {
  template <class V>
  static NPAS_INLINE typename V::vec apply(typename V::vec x) {
    return x;
  }
};

// The store of a whole tile that replaces C: every row and vector in full, the rest of the
// epilogue (residual, activation; the bias is in the accumulators already) on the way when
// kEpilogue.
template <class V, int MR, int NV, bool kRes, class Act, bool kEpilogue>
NPAS_INLINE void store_full(typename V::vec (&acc)[MR][NV], float* c, std::ptrdiff_t ldc,
                            const float* res) {
  using vec = typename V::vec;
  constexpr int L = V::kLanes;
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      vec v = acc[i][j];
      if constexpr (kEpilogue) {
        if constexpr (kRes) v = V::add(v, V::load(res + i * ldc + j * L));
        v = Act::template apply<V>(v);
      }
      V::store(c + i * ldc + j * L, v);
    }
  }
  (void)res;
}

// One output tile. `bias` points at this tile's first row (kBiasRow: MR values) or first
// column (kBiasCol: NR values). `res` is the residual tensor at the same offset as `c` (same
// ldc) or null. `accumulate`: add to what C holds (a K block after the first). `last`: the
// final K block, apply the epilogue. m_valid/n_valid clip the store for remainder tiles.
template <class V, int MR, int NV, int kBias, bool kRes, class Act>
NPAS_INLINE void tile(int kc, const float* __restrict a, const float* __restrict b,
                      std::ptrdiff_t ldb, float* c, std::ptrdiff_t ldc, int m_valid, int n_valid,
                      bool accumulate, bool last, const float* bias, const float* res) {
  using vec = typename V::vec;
  constexpr int L = V::kLanes;
  constexpr int NR = NV * L;
  const bool full = m_valid == MR && n_valid == NR;
  // A whole tile computed in one K block (the common case) starts from its bias instead of
  // zero: the accumulators are initialised either way, and the epilogue saves an add per
  // vector.
  const bool bias_first = kBias != kNoBias && full && !accumulate && last;
  vec acc[MR][NV];
  if (bias_first) {
    vec bcol[NV];
    if constexpr (kBias == kBiasCol) V::template load_n<NV>(bias, bcol);
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
      const vec brow = kBias == kBiasRow ? V::set1(bias[i]) : V::zero();
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = kBias == kBiasRow ? brow : bcol[j];
    }
  } else {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
    }
  }
  kloop<V, MR, NV>(acc, kc, a, [b, ldb](int k) { return b + k * ldb; });
  if (full && !accumulate) {
    // The common case, without a test per vector.
    if (last) {
      store_full<V, MR, NV, kRes, Act, true>(acc, c, ldc, res);
    } else {
      store_full<V, MR, NV, kRes, Act, false>(acc, c, ldc, res);
    }
    return;
  }
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
    if (!full && i >= m_valid) break;
    float* ci = c + i * ldc;
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const int n = full ? L : std::min(L, n_valid - j * L);
      if (n <= 0) break;
      vec v = acc[i][j];
      if (accumulate) v = V::add(v, n == L ? V::load(ci + j * L) : V::load_partial(ci + j * L, n));
      if (last) {
        if (kBias == kBiasRow) v = V::add(v, V::set1(bias[i]));
        if (kBias == kBiasCol) v = V::add(v, V::load(bias + j * L));
        if (kRes) {
          const float* ri = res + i * ldc + j * L;
          v = V::add(v, n == L ? V::load(ri) : V::load_partial(ri, n));
        }
        v = Act::template apply<V>(v);
      }
      if (n == L) {
        V::store(ci + j * L, v);
      } else {
        V::store_partial(ci + j * L, v, n);
      }
    }
  }
}

// The same register tile with B read in place: row k of B is base + koff[k] (NR floats), e.g.
// one tap of one channel in padded phase planes (implicit GEMM: no im2col copy at all). The
// raw accumulators stay in `acc` for the caller's epilogue.
template <class V, int MR, int NV>
NPAS_INLINE void gather_acc(int kc, const float* __restrict a, const float* base,
                            const std::int32_t* __restrict koff, typename V::vec (&acc)[MR][NV]) {
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) acc[i][j] = V::zero();
  }
  kloop<V, MR, NV>(acc, kc, a, [base, koff](int k) { return base + koff[k]; });
}

// gather_acc, the raw accumulators stored to c (ldc floats per row).
template <class V, int MR, int NV>
NPAS_INLINE void tile_gather(int kc, const float* __restrict a, const float* base,
                             const std::int32_t* __restrict koff, float* __restrict c,
                             std::ptrdiff_t ldc) {
  constexpr int L = V::kLanes;
  typename V::vec acc[MR][NV];
  gather_acc<V, MR, NV>(kc, a, base, koff, acc);
#pragma GCC unroll 32
  for (int i = 0; i < MR; ++i) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) V::store(c + i * ldc + j * L, acc[i][j]);
  }
}

// Pack rows of B: panel row k (NR floats) <- src + offsets[k] + col0, n_valid floats, the rest
// zero (so remainder columns compute on zeros, never on stale scratch).
template <class V, int NV>
NPAS_INLINE void pack_b_contiguous(float* __restrict dst, const float* src, std::ptrdiff_t ld,
                                   int kc, int n_valid) {
  constexpr int L = V::kLanes;
  if (n_valid == NV * L) {
    for (int k = 0; k < kc; ++k) {
#pragma GCC unroll 8
      for (int j = 0; j < NV; ++j) V::store(dst + j * L, V::load(src + j * L));
      dst += NV * L;
      src += ld;
    }
    return;
  }
  for (int k = 0; k < kc; ++k) {
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const int n = std::max(0, std::min(L, n_valid - j * L));
      V::store(dst + j * L, V::load_partial(src + j * L, n));
    }
    dst += NV * L;
    src += ld;
  }
}

// Pack MR rows of a row-major A (rows m0.., ld floats apart) k-major: dst[k*MR + i] =
// a[i*ld + k]; missing rows (i >= m_valid) are zero.
template <int MR>
NPAS_INLINE void pack_a_rows(float* __restrict dst, const float* a, std::ptrdiff_t ld, int kc,
                             int m_valid) {
  for (int k = 0; k < kc; ++k) {
#pragma GCC unroll 32
    for (int i = 0; i < MR; ++i) dst[k * MR + i] = i < m_valid ? a[i * ld + k] : 0.0f;
  }
}

// How a GEMM over (groups, pixel blocks, M chunks) is cut into work items for `threads`:
// pixel blocks of at most nc_max columns (a multiple of nr); when there are too few column
// tiles to keep every thread busy the M dimension is split instead.
struct Plan {
  int nblocks;  // column blocks per group
  int nc;       // columns per block (multiple of nr)
  int mchunks;  // M chunks per (group, column block)
  std::int64_t items() const { return static_cast<std::int64_t>(nblocks) * mchunks; }
};

inline Plan plan(int groups, int n, int nr, int nc_max, int mtiles, int threads) {
  const int ntiles = (n + nr - 1) / nr;
  int nblocks = std::max(1, (n + nc_max - 1) / nc_max);
  int mchunks = 1;
  if (threads > 1) {
    if (static_cast<std::int64_t>(groups) * ntiles >= 4 * threads) {
      // Enough column tiles: give every thread the same number of blocks.
      while ((static_cast<std::int64_t>(groups) * nblocks) % threads != 0 && nblocks < ntiles) {
        ++nblocks;
      }
    } else {
      mchunks = std::min(mtiles, threads * 2);
    }
  }
  nblocks = std::min(nblocks, ntiles);
  const int tiles_per_block = (ntiles + nblocks - 1) / nblocks;
  nblocks = (ntiles + tiles_per_block - 1) / tiles_per_block;
  return Plan{nblocks, tiles_per_block * nr, mchunks};
}

}  // namespace gemm
}  // namespace npas

#endif  // NPAS_GEMM_H_
