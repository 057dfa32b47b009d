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

// dst[s] = src[s * SW] for s in [0, n); the source run is within one input row.
template <class V, int SW>
NPAS_INLINE void strided_copy(float* __restrict dst, const float* __restrict src, int n) {
  int s = 0;
  if (SW == 1) {
    simd::copy<V>(dst, src, n);
    return;
  }
  if (SW == 2) {
    // Vector body only while its 2*kLanes-float read stays inside the run (last read:
    // src[2(n-1)]), so it never touches memory past the input row.
    for (; s + V::kLanes < n; s += V::kLanes) {
      V::store(dst + s, V::load_even(src + 2 * s));
    }
  }
  for (; s < n; ++s) dst[s] = src[s * SW];
}

// One channel's phase planes. `phases` lists the used (a, b) pairs; planes are Hq x Wq each,
// consecutive in that order. Outside the image they hold `pad` (0 for conv/avg, -inf for max).
template <class V, int SH, int SW>
NPAS_INLINE void build_planes(float* __restrict dst, const float* __restrict x, int H, int W,
                              int pt, int pl, int Hq, int Wq, const int* phases, int nphases,
                              float pad) {
  for (int pi = 0; pi < nphases; ++pi) {
    const int a = phases[2 * pi], b = phases[2 * pi + 1];
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
        strided_copy<V, SW>(dst + s_lo, x + static_cast<std::ptrdiff_t>(y) * W + s_lo * SW + b - pl,
                            s_hi - s_lo);
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
