// Helpers for windowed ops (convolution, depthwise convolution, pooling): padded phase planes
// and the im2col packing built on them.
//
// A strided, padded, dilated window reads x[oy*sh + ky*dh - pt][ox*sw + kx*dw - pl]. Copying a
// channel once into sh*sw "phase planes" of its padded image, plane(a, b)[r][s] =
// xpad[r*sh + a][s*sw + b], turns every tap into a stride-1 read at a fixed offset:
// plane((ky*dh) % sh, (kx*dw) % sw)[oy + (ky*dh) / sh][ox + (kx*dw) / sw]. So every kernel
// below reads contiguous runs with no bounds checks, whatever the stride, pads and dilation.
#ifndef NPAS_WINDOW_H_
#define NPAS_WINDOW_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "npas/simd.h"

namespace npas {
namespace window {

// dst[s] = src[s * SW] for s in [0, n); the source run is within one input row. `slack`: the
// float after the run's last, src[SW * (n - 1) + 1], may be read too (it is still inside the
// image), which lets the stride-2 copy end with a whole vector instead of a scalar tail.
template <class V, int SW>
NPAS_INLINE void strided_copy(float* __restrict dst, const float* __restrict src, int n,
                              bool slack) {
  constexpr int L = V::kLanes;
  int s = 0;
  if (SW == 1) {
    simd::copy<V>(dst, src, n);
    return;
  }
  if (SW == 2) {
    // A vector at s reads src[2s .. 2s + 2L): inside the run while s + L < n, or s + L <= n
    // with the slack float.
    const int end = slack ? n : n - 1;
    for (; s + 2 * L <= end; s += 2 * L) {
      V::store(dst + s, V::load_even(src + 2 * s));
      V::store(dst + s + L, V::load_even(src + 2 * s + 2 * L));
    }
    for (; s + L <= end; s += L) V::store(dst + s, V::load_even(src + 2 * s));
    if (slack && s < n && n >= L) {
      V::store(dst + n - L, V::load_even(src + 2 * (n - L)));  // overlaps what is done
      return;
    }
  }
  for (; s < n; ++s) dst[s] = src[s * SW];
}

// Phase planes (a, 0) and (a, 1) of a stride-2 window together (the second follows the first):
// one de-interleaving load fills a row of both from one source row, instead of two strided
// passes over it.
template <class V, int SH>
NPAS_INLINE void build_phase_pair(float* __restrict dst, const float* __restrict x, int H, int W,
                                  int pt, int pl, int Hq, int Wq, int a, float pad) {
  constexpr int L = V::kLanes;
  float* d[2] = {dst, dst + static_cast<std::ptrdiff_t>(Hq) * Wq};
  // Per plane b: columns s whose source 2s + b - pl lies in [0, W); both: [clo, chi).
  int lo[2], hi[2];
  for (int b = 0; b < 2; ++b) {
    lo[b] = std::min(Wq, std::max(0, (pl - b + 1) / 2));
    hi[b] = std::max(lo[b], std::min(Wq, (W - 1 + pl - b) / 2 + 1));
  }
  const int clo = std::max(lo[0], lo[1]), chi = std::max(clo, std::min(hi[0], hi[1]));
  for (int r = 0; r < Hq; ++r, d[0] += Wq, d[1] += Wq) {
    const int y = r * SH + a - pt;
    if (y < 0 || y >= H) {
      simd::fill<V>(d[0], pad, Wq);
      simd::fill<V>(d[1], pad, Wq);
      continue;
    }
    const float* xr = x + static_cast<std::ptrdiff_t>(y) * W;
    for (int b = 0; b < 2; ++b) {
      if (lo[b] > 0) simd::fill<V>(d[b], pad, lo[b]);
      for (int s = lo[b]; s < clo; ++s) d[b][s] = xr[2 * s + b - pl];
      for (int s = chi; s < hi[b]; ++s) d[b][s] = xr[2 * s + b - pl];
      if (hi[b] < Wq) simd::fill<V>(d[b] + hi[b], pad, Wq - hi[b]);
    }
    // Inside [clo, chi) every vector reads source columns [2s - pl, 2s - pl + 2L), all in the
    // row; the last vector overlaps the one before instead of leaving a scalar tail.
    int s = clo;
    typename V::vec e, o;
    for (; s + L <= chi; s += L) {
      V::load_pairs(xr + 2 * s - pl, &e, &o);
      V::store(d[0] + s, e);
      V::store(d[1] + s, o);
    }
    if (s < chi && chi - clo >= L) {
      V::load_pairs(xr + 2 * (chi - L) - pl, &e, &o);
      V::store(d[0] + chi - L, e);
      V::store(d[1] + chi - L, o);
    } else {
      for (; s < chi; ++s) {
        d[0][s] = xr[2 * s - pl];
        d[1][s] = xr[2 * s + 1 - pl];
      }
    }
  }
}

// One channel's phase planes. `phases` lists the used (a, b) pairs; planes are Hq x Wq each,
// consecutive in that order. Outside the image they hold `pad` (0 for conv/avg, -inf for max).
template <class V, int SH, int SW>
NPAS_INLINE void build_planes(float* __restrict dst, const float* __restrict x, int H, int W,
                              int pt, int pl, int Hq, int Wq, const int* phases, int nphases,
                              float pad) {
  for (int pi = 0; pi < nphases; ++pi) {
    const int a = phases[2 * pi], b = phases[2 * pi + 1];
    if (SW == 2 && b == 0 && pi + 1 < nphases && phases[2 * pi + 2] == a &&
        phases[2 * pi + 3] == 1) {
      build_phase_pair<V, SH>(dst, x, H, W, pt, pl, Hq, Wq, a, pad);
      dst += 2 * static_cast<std::ptrdiff_t>(Hq) * Wq;
      ++pi;
      continue;
    }
    // Columns s whose source x = s*SW + b - pl lies in [0, W).
    const int s_lo = std::min(Wq, std::max(0, (pl - b + SW - 1) / SW));
    const int s_hi = std::max(s_lo, std::min(Wq, (W - 1 + pl - b) / SW + 1));
    for (int r = 0; r < Hq; ++r, dst += Wq) {
      const int y = r * SH + a - pt;
      if (y < 0 || y >= H) {
        simd::fill<V>(dst, pad, Wq);
        continue;
      }
      if (s_lo > 0) simd::fill<V>(dst, pad, s_lo);
      if (s_hi > s_lo) {
        const bool slack = y + 1 < H || (s_hi - 1) * SW + b - pl + 1 < W;
        strided_copy<V, SW>(dst + s_lo, x + static_cast<std::ptrdiff_t>(y) * W + s_lo * SW + b - pl,
                            s_hi - s_lo, slack);
      }
      if (s_hi < Wq) simd::fill<V>(dst + s_hi, pad, Wq - s_hi);
    }
  }
}

// A run of output pixels that lie in one output row: block columns [col, col + len) come from
// plane offset q (= oy * Wq + ox) onwards.
struct Segment {
  int col, len, q;
};

// Split pixels [p0, p0 + n) of an OW-wide output into per-row segments; returns the count
// (at most n / OW + 2).
NPAS_INLINE int segments(Segment* seg, int p0, int n, int OW, int Wq) {
  int count = 0;
  for (int col = 0; col < n;) {
    const int p = p0 + col;
    const int oy = p / OW, ox = p - oy * OW;
    const int len = std::min(OW - ox, n - col);
    seg[count++] = Segment{col, len, oy * Wq + ox};
    col += len;
  }
  return count;
}

// im2col of a block of output pixels, k-major: row k (ldb floats) gets, for each segment, the
// run src + koff[k] + q; columns [n, ldb) are zeroed so remainder tiles compute on zeros.
// Segments are per output row, so the copies are long contiguous runs whatever the tile width.
template <class V>
NPAS_INLINE void pack_block(float* __restrict dst, std::ptrdiff_t ldb, const float* src,
                            const std::int64_t* koff, int kc, const Segment* seg, int nseg,
                            int n) {
  for (int k = 0; k < kc; ++k, dst += ldb) {
    const float* s = src + koff[k];
    for (int i = 0; i < nseg; ++i) simd::copy<V>(dst + seg[i].col, s + seg[i].q, seg[i].len);
    if (n < ldb) simd::fill<V>(dst + n, 0.0f, ldb - n);
  }
}

}  // namespace window
}  // namespace npas

#endif  // NPAS_WINDOW_H_
