// Winograd F(4x4, 3x3) convolution for float32 NHWC tensors on x86-64 CPUs.
//
// Each 6x6 input tile (stride 4, zero padding 1) is transformed with B^T d B,
// multiplied position by position with the transformed weights G g G^T (36
// GEMMs per block of tiles, through the MKL sgemm that PyTorch's x86 builds
// export), and transformed back with A^T m A into a 4x4 output tile,
// with the bias and an optional ReLU fused in. Blocks of tiles are spread over
// PyTorch's intra-op threads, so that each block's intermediates stay in
// cache: 4x fewer multiply-adds than a direct 3x3 convolution and no
// full-size temporary tensors. conv3x3 can also apply a following 1x1 conv
// + ReLU to the tiles in cache; conv3x3_relu_maxpool pools the ReLU'd
// output strip by strip without writing it. For training,
// conv3x3_weight_grad accumulates the weight gradient in the transformed
// domain (the input gradient is conv3x3 of the output gradient with
// flipped, transposed kernels).
#include <ATen/Parallel.h>
#include <torch/extension.h>

#include <algorithm>
#include <limits>
#include <mutex>
#include <vector>

extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m,
            const int* n, const int* k, const float* alpha, const float* a,
            const int* lda, const float* b, const int* ldb, const float* beta,
            float* c, const int* ldc);
}

namespace {

constexpr int kTile = 6;     // input tile side
constexpr int kOut = 4;      // output tile side
constexpr int kPos = 36;     // positions in a transformed tile
constexpr int kLanes = 16;   // channels transformed together
constexpr int kMaxTiles = 64;  // tiles per task (rows of each GEMM)

// B^T applied to six values of one channel lane.
inline void bt_rows(const float d0, const float d1, const float d2,
                    const float d3, const float d4, const float d5,
                    float* out, int stride) {
  out[0 * stride] = 4.f * d0 - 5.f * d2 + d4;
  out[1 * stride] = -4.f * (d1 + d2) + d3 + d4;
  out[2 * stride] = 4.f * (d1 - d2) - d3 + d4;
  out[3 * stride] = 2.f * (d3 - d1) - d2 + d4;
  out[4 * stride] = 2.f * (d1 - d3) - d2 + d4;
  out[5 * stride] = 4.f * d1 - 5.f * d3 + d5;
}

// Load `lanes` channels of pixel (yy, xx) of an (H, W, channels) image,
// from channel c0 on, into a lane buffer: zeros past `lanes` and for pixels
// outside the image (the zero padding).
inline void load_lanes(const float* image, int H, int W, int channels,
                       int yy, int xx, int c0, int lanes, float* dst) {
  if (yy < 0 || yy >= H || xx < 0 || xx >= W) {
    std::fill_n(dst, kLanes, 0.f);
    return;
  }
  std::copy_n(image + ((int64_t)yy * W + xx) * channels + c0, lanes, dst);
  std::fill_n(dst + lanes, kLanes - lanes, 0.f);
}

// Transform channels [c0, c0 + lanes) of the tile whose top-left input
// pixel is (y0, x0) and write position p's values to v[p * ldv + c].
void input_transform_lanes(const float* x, int H, int W, int C, int y0,
                           int x0, int c0, int lanes, float* v, int64_t ldv) {
  float d[kTile][kTile][kLanes];
  for (int i = 0; i < kTile; ++i)
    for (int j = 0; j < kTile; ++j)
      load_lanes(x, H, W, C, y0 + i, x0 + j, c0, lanes, d[i][j]);
  float t[kTile][kTile][kLanes];
  for (int j = 0; j < kTile; ++j)
#pragma omp simd
    for (int c = 0; c < kLanes; ++c)
      bt_rows(d[0][j][c], d[1][j][c], d[2][j][c], d[3][j][c], d[4][j][c],
              d[5][j][c], &t[0][j][c], kTile * kLanes);
  for (int i = 0; i < kTile; ++i) {
#pragma omp simd
    for (int c = 0; c < kLanes; ++c)
      bt_rows(t[i][0][c], t[i][1][c], t[i][2][c], t[i][3][c], t[i][4][c],
              t[i][5][c], &d[i][0][c], kLanes);
    for (int j = 0; j < kTile; ++j) {
      float* dst = v + (int64_t)(i * kTile + j) * ldv;
      for (int c = 0; c < lanes; ++c) dst[c] = d[i][j][c];
    }
  }
}

// B^T d B of all C channels of the 6x6 input tile of the output tile at
// (y0, x0) (input rows and columns from y0 - 1, x0 - 1): position p's
// values go to v[p * ldv + c].
void input_transform(const float* x, int H, int W, int C, int y0, int x0,
                     float* v, int64_t ldv) {
  for (int c0 = 0; c0 < C; c0 += kLanes)
    input_transform_lanes(x, H, W, C, y0 - 1, x0 - 1, c0,
                          std::min(kLanes, C - c0), v + c0, ldv);
}

// A^T applied to six values: four outputs.
inline void at_rows(const float v0, const float v1, const float v2,
                    const float v3, const float v4, const float v5,
                    float* out, int stride) {
  out[0 * stride] = v0 + v1 + v2 + v3 + v4;
  out[1 * stride] = v1 - v2 + 2.f * (v3 - v4);
  out[2 * stride] = v1 + v2 + 4.f * (v3 + v4);
  out[3 * stride] = v1 - v2 + 8.f * (v3 - v4) + v5;
}

// Transform position values m[p * ldm + c] of one tile back into its 4x4
// output pixels for `lanes` channels, add the bias, apply the ReLU, and
// store the first `rows` x `cols` pixels at dst + row * ld_row + col * ld_col.
void output_transform_lanes(const float* m, int64_t ldm, int lanes,
                            const float* bias, bool relu, float* dst,
                            int64_t ld_row, int64_t ld_col, int rows,
                            int cols) {
  // Lanes past `lanes` compute garbage from the next channels (or the
  // buffer's slack) and are never stored.
  float t[kOut][kTile][kLanes];
  for (int j = 0; j < kTile; ++j) {
    const float* col = m + j * ldm;
#pragma omp simd
    for (int c = 0; c < kLanes; ++c)
      at_rows(col[0 * kTile * ldm + c], col[1 * kTile * ldm + c],
              col[2 * kTile * ldm + c], col[3 * kTile * ldm + c],
              col[4 * kTile * ldm + c], col[5 * kTile * ldm + c], &t[0][j][c],
              kTile * kLanes);
  }
  float b[kLanes];
  for (int c = 0; c < kLanes; ++c)
    b[c] = bias != nullptr && c < lanes ? bias[c] : 0.f;
  for (int i = 0; i < rows; ++i) {
    float o[kOut][kLanes];
#pragma omp simd
    for (int c = 0; c < kLanes; ++c)
      at_rows(t[i][0][c], t[i][1][c], t[i][2][c], t[i][3][c], t[i][4][c],
              t[i][5][c], &o[0][c], kLanes);
    for (int j = 0; j < cols; ++j) {
      float* out = dst + i * ld_row + j * ld_col;
      for (int c = 0; c < lanes; ++c) {
        const float value = o[j][c] + b[c];
        out[c] = relu ? std::max(value, 0.f) : value;
      }
    }
  }
}

// output_transform_lanes for all K channels (bias may be null).
void output_transform(const float* m, int64_t ldm, int K, const float* bias,
                      bool relu, float* dst, int64_t ld_row, int64_t ld_col,
                      int rows, int cols) {
  for (int k0 = 0; k0 < K; k0 += kLanes)
    output_transform_lanes(m + k0, ldm, std::min(kLanes, K - k0),
                           bias ? bias + k0 : nullptr, relu, dst + k0, ld_row,
                           ld_col, rows, cols);
}

// A applied to four values of one lane: the six-value adjoint of at_rows.
inline void a_rows(const float y0, const float y1, const float y2,
                   const float y3, float* out, int stride) {
  out[0 * stride] = y0;
  out[1 * stride] = y0 + y1 + y2 + y3;
  out[2 * stride] = y0 - y1 + y2 - y3;
  out[3 * stride] = y0 + 2.f * y1 + 4.f * y2 + 8.f * y3;
  out[4 * stride] = y0 - 2.f * y1 + 4.f * y2 - 8.f * y3;
  out[5 * stride] = y3;
}

// The adjoint of output_transform: A dy A^T of the 4x4 output-gradient tile
// at (y0, x0) (zero outside the output) for channels [k0, k0 + lanes),
// written to g[p * ldg + c].
void output_grad_transform_lanes(const float* dy, int H, int W, int K,
                                 int y0, int x0, int k0, int lanes, float* g,
                                 int64_t ldg) {
  float d[kOut][kOut][kLanes];
  for (int i = 0; i < kOut; ++i)
    for (int j = 0; j < kOut; ++j)
      load_lanes(dy, H, W, K, y0 + i, x0 + j, k0, lanes, d[i][j]);
  float t[kTile][kOut][kLanes];
  for (int j = 0; j < kOut; ++j)
#pragma omp simd
    for (int c = 0; c < kLanes; ++c)
      a_rows(d[0][j][c], d[1][j][c], d[2][j][c], d[3][j][c], &t[0][j][c],
             kOut * kLanes);
  for (int i = 0; i < kTile; ++i) {
    float o[kTile][kLanes];
#pragma omp simd
    for (int c = 0; c < kLanes; ++c)
      a_rows(t[i][0][c], t[i][1][c], t[i][2][c], t[i][3][c], &o[0][c],
             kLanes);
    for (int j = 0; j < kTile; ++j)
      std::copy_n(o[j], lanes, g + (int64_t)(i * kTile + j) * ldg);
  }
}

// c (m x n) = a (m x k) b (k x n), all row-major and dense, single-threaded
// (it runs inside PyTorch's parallel region): in column-major terms
// c^T = b^T a^T.
void gemm(int m, int n, int k, const float* a, const float* b, float* c) {
  const float one = 1.f, zero = 0.f;
  sgemm_("N", "N", &n, &m, &k, &one, b, &n, a, &k, &zero, c, &n);
}

// output_grad_transform_lanes for all K channels.
void output_grad_transform(const float* dy, int H, int W, int K, int y0,
                           int x0, float* g, int64_t ldg) {
  for (int k0 = 0; k0 < K; k0 += kLanes)
    output_grad_transform_lanes(dy, H, W, K, y0, x0, k0,
                                std::min(kLanes, K - k0), g + k0, ldg);
}

// The tiles of a batch of N images, each cut into 4x4 output tiles.
struct TileGrid {
  int tiles_h, tiles_w;
  TileGrid(int H, int W)
      : tiles_h((H + kOut - 1) / kOut), tiles_w((W + kOut - 1) / kOut) {}
  int64_t size(int N) const { return (int64_t)N * tiles_h * tiles_w; }
  // Image n and top-left output pixel (y0, x0) of tile number `tile`.
  void locate(int64_t tile, int* n, int* y0, int* x0) const {
    const int64_t per_image = (int64_t)tiles_h * tiles_w;
    const int rest = tile % per_image;
    *n = tile / per_image;
    *y0 = rest / tiles_w * kOut;
    *x0 = rest % tiles_w * kOut;
  }
};

// m_p = v_p u_p for the 36 positions p of `count` tiles: v holds `stride`
// rows of C values per position, m `stride` rows of K values.
void multiply_positions(int count, int C, int K, const float* v,
                        const float* u, float* m, int64_t stride) {
  for (int p = 0; p < kPos; ++p)
    gemm(count, K, C, v + p * stride * C, u + (int64_t)p * C * K,
         m + p * stride * K);
}

// Tiles per task: enough tasks to keep every thread busy, at most kMaxTiles.
int64_t tiles_per_task(int64_t tiles) {
  return std::max<int64_t>(
      1, std::min<int64_t>(kMaxTiles,
                           tiles / (4 * at::get_num_threads()) + 1));
}

void check_nhwc(const at::Tensor& x) {
  TORCH_CHECK(x.dim() == 4 && x.scalar_type() == at::kFloat &&
                  x.is_contiguous() && x.device().is_cpu(),
              "expected a contiguous float32 (N, H, W, C) CPU tensor, got ",
              x.sizes());
}

void check_transformed(const at::Tensor& u, int64_t C) {
  TORCH_CHECK(u.dim() == 3 && u.size(0) == kPos && u.size(1) == C &&
                  u.is_contiguous() && u.scalar_type() == at::kFloat,
              "expected contiguous float32 (36, C, K) transformed weights "
              "for ", C, " input channels, got ", u.sizes());
}

void check_vector(const c10::optional<at::Tensor>& t, int64_t size,
                  const char* name) {
  TORCH_CHECK(!t || (t->numel() == size && t->is_contiguous() &&
                     t->scalar_type() == at::kFloat),
              name, " must be a contiguous float32 vector of ", size,
              " values");
}

}  // namespace

// 3x3 convolution, stride 1, zero padding 1, of x (N, H, W, C) with the
// transformed weights u (36, C, K), plus bias and optional ReLU; returns
// (N, H, W, K). With a projection (K, P) the result goes on, still in
// cache, through that 1x1 convolution, its bias and a ReLU: returns
// (N, H, W, P).
at::Tensor conv3x3(const at::Tensor& x, const at::Tensor& u,
                   const c10::optional<at::Tensor>& bias, bool relu,
                   const c10::optional<at::Tensor>& projection,
                   const c10::optional<at::Tensor>& proj_bias) {
  check_nhwc(x);
  check_transformed(u, x.size(3));
  const int K = u.size(2);
  check_vector(bias, K, "bias");
  TORCH_CHECK(!projection ||
                  (projection->dim() == 2 && projection->size(0) == K &&
                   projection->is_contiguous() &&
                   projection->scalar_type() == at::kFloat),
              "projection must be a contiguous float32 (", K, ", P) matrix");
  const int P = projection ? projection->size(1) : 0;
  TORCH_CHECK(!proj_bias || projection, "projection bias without projection");
  check_vector(proj_bias, P, "projection bias");
  const int N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const TileGrid grid(H, W);
  const int64_t tiles = grid.size(N);
  const int64_t per_task = tiles_per_task(tiles);
  const int64_t tasks = (tiles + per_task - 1) / per_task;
  const int out_channels = projection ? P : K;
  auto y = at::empty({N, H, W, out_channels}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* up = u.data_ptr<float>();
  const float* bp = bias ? bias->data_ptr<float>() : nullptr;
  const float* pp = projection ? projection->data_ptr<float>() : nullptr;
  const float* pbp = proj_bias ? proj_bias->data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  constexpr int kPixels = kOut * kOut;
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> v((size_t)kPos * per_task * C);
    std::vector<float> m((size_t)kPos * per_task * K + kLanes);
    // With a projection: the tiles' pixels (K channels) and their
    // projection (P channels), pixel-major.
    std::vector<float> z(projection ? (size_t)per_task * kPixels * K : 0);
    std::vector<float> o(projection ? (size_t)per_task * kPixels * P : 0);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t first = task * per_task;
      const int count = (int)std::min<int64_t>(per_task, tiles - first);
      int n, y0, x0;
      for (int i = 0; i < count; ++i) {
        grid.locate(first + i, &n, &y0, &x0);
        input_transform(xp + (int64_t)n * H * W * C, H, W, C, y0, x0,
                        v.data() + (int64_t)i * C, per_task * C);
      }
      multiply_positions(count, C, K, v.data(), up, m.data(), per_task);
      for (int i = 0; i < count; ++i) {
        grid.locate(first + i, &n, &y0, &x0);
        const float* mi = m.data() + (int64_t)i * K;
        if (projection)
          output_transform(mi, per_task * K, K, bp, relu,
                           z.data() + (int64_t)i * kPixels * K, kOut * K, K,
                           kOut, kOut);
        else
          output_transform(mi, per_task * K, K, bp, relu,
                           yp + (((int64_t)n * H + y0) * W + x0) * K,
                           (int64_t)W * K, K, std::min(kOut, H - y0),
                           std::min(kOut, W - x0));
      }
      if (!projection) continue;
      gemm(count * kPixels, P, K, z.data(), pp, o.data());
      for (int i = 0; i < count; ++i) {
        grid.locate(first + i, &n, &y0, &x0);
        for (int r = 0; r < kOut && y0 + r < H; ++r)
          for (int c = 0; c < kOut && x0 + c < W; ++c) {
            const float* src =
                o.data() + ((int64_t)i * kPixels + r * kOut + c) * P;
            float* dst = yp + (((int64_t)n * H + y0 + r) * W + x0 + c) * P;
            for (int q = 0; q < P; ++q)
              dst[q] = std::max(src[q] + (pbp ? pbp[q] : 0.f), 0.f);
          }
      }
    }
  });
  return y;
}

namespace {

// One output row r of a direct 3x3 convolution (zero padding 1) + bias +
// ReLU, for the row a thread's first strip needs from the strip above:
// x (H, W, C) of one image, wt (9, C, K) (kernel position, in, out),
// out (W, K).
void direct_row(const float* x, int H, int W, int C, const float* wt,
                const float* bias, int K, int r, float* out) {
  for (int col = 0; col < W; ++col) {
    float* acc = out + (int64_t)col * K;
    for (int k = 0; k < K; ++k) acc[k] = bias ? bias[k] : 0.f;
    for (int i = 0; i < 3; ++i) {
      const int yy = r + i - 1;
      if (yy < 0 || yy >= H) continue;
      for (int j = 0; j < 3; ++j) {
        const int xx = col + j - 1;
        if (xx < 0 || xx >= W) continue;
        const float* src = x + ((int64_t)yy * W + xx) * C;
        const float* w = wt + (int64_t)(i * 3 + j) * C * K;
        for (int c = 0; c < C; ++c) {
          const float a = src[c];
#pragma omp simd
          for (int k = 0; k < K; ++k) acc[k] += a * w[(int64_t)c * K + k];
        }
      }
    }
    for (int k = 0; k < K; ++k) acc[k] = std::max(acc[k], 0.f);
  }
}

}  // namespace

// ReLU(conv3x3(x) + bias) followed by a 3x3 stride-2 padding-1 max pool,
// without writing the full-resolution map: each thread takes consecutive
// strips of 4 output rows, keeps them (and the row above) in a buffer,
// pools them and writes only the pooled rows. x (N, H, W, C), u (36, C, K)
// transformed weights, wt (9, C, K) the plain weights (for the one row
// above a thread's first strip); returns (N, ceil(H / 2), ceil(W / 2), K).
at::Tensor conv3x3_relu_maxpool(const at::Tensor& x, const at::Tensor& u,
                                const at::Tensor& wt,
                                const c10::optional<at::Tensor>& bias) {
  check_nhwc(x);
  const int N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  check_transformed(u, C);
  const int K = u.size(2);
  TORCH_CHECK(wt.dim() == 3 && wt.size(0) == 9 && wt.size(1) == C &&
                  wt.size(2) == K && wt.is_contiguous() &&
                  wt.scalar_type() == at::kFloat,
              "expected contiguous float32 (9, ", C, ", ", K,
              ") weights, got ", wt.sizes());
  check_vector(bias, K, "bias");
  const TileGrid grid(H, W);
  const int tiles_h = grid.tiles_h, tiles_w = grid.tiles_w;
  const int Ho = (H + 1) / 2, Wo = (W + 1) / 2;
  auto y = at::empty({N, Ho, Wo, K}, x.options());
  const float* xp = x.data_ptr<float>();
  const float* up = u.data_ptr<float>();
  const float* wp = wt.data_ptr<float>();
  const float* bp = bias ? bias->data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const int64_t block = std::min<int64_t>(kMaxTiles, tiles_w);
  const int64_t row = (int64_t)W * K;
  at::parallel_for(0, (int64_t)N * tiles_h, 1, [&](int64_t begin,
                                                   int64_t end) {
    std::vector<float> v((size_t)kPos * block * C);
    std::vector<float> m((size_t)kPos * block * K + kLanes);
    // Conv rows 4 * ty - 1 (row 0) to 4 * ty + 3 (row 4) of the strip.
    std::vector<float> strip((size_t)(kOut + 1) * row);
    for (int64_t s = begin; s < end; ++s) {
      const int n = s / tiles_h, ty = s % tiles_h, y0 = ty * kOut;
      const float* xn = xp + (int64_t)n * H * W * C;
      if (ty > 0 && s == begin)  // the row above, from another thread
        direct_row(xn, H, W, C, wp, bp, K, y0 - 1, strip.data());
      else if (ty > 0)  // the previous strip's last row
        std::copy_n(strip.data() + kOut * row, row, strip.data());
      for (int t0 = 0; t0 < tiles_w; t0 += block) {
        const int count = (int)std::min<int64_t>(block, tiles_w - t0);
        for (int i = 0; i < count; ++i)
          input_transform(xn, H, W, C, y0, (t0 + i) * kOut,
                          v.data() + (int64_t)i * C, block * C);
        multiply_positions(count, C, K, v.data(), up, m.data(), block);
        for (int i = 0; i < count; ++i) {
          const int x0 = (t0 + i) * kOut;
          output_transform(m.data() + (int64_t)i * K, block * K, K, bp, true,
                           strip.data() + row + (int64_t)x0 * K, row, K,
                           std::min(kOut, H - y0), std::min(kOut, W - x0));
        }
      }
      // Pooled rows 2 ty and 2 ty + 1: conv rows (2 py - 1 .. 2 py + 1),
      // strip rows (2 py - y0 .. 2 py - y0 + 2), inside the image only.
      for (int py = 2 * ty; py < std::min(2 * ty + 2, Ho); ++py) {
        const int r_first = std::max(2 * py - 1, 0);
        const int r_last = std::min(2 * py + 1, H - 1);
        float* out = yp + ((int64_t)n * Ho + py) * Wo * K;
        for (int px = 0; px < Wo; ++px) {
          const int c_first = std::max(2 * px - 1, 0);
          const int c_last = std::min(2 * px + 1, W - 1);
          float* dst = out + (int64_t)px * K;
          std::fill_n(dst, K, -std::numeric_limits<float>::infinity());
          for (int r = r_first; r <= r_last; ++r)
            for (int c = c_first; c <= c_last; ++c) {
              const float* src =
                  strip.data() + (r - y0 + 1) * row + (int64_t)c * K;
#pragma omp simd
              for (int k = 0; k < K; ++k) dst[k] = std::max(dst[k], src[k]);
            }
        }
      }
    }
  });
  return y;
}

// The gradient of conv3x3's loss with respect to the transformed weights:
// sum over tiles of (B^T d B)^T (A dy A^T), position by position, for x
// (N, H, W, C) and the output gradient dy (N, H, W, K); returns (36, C, K).
at::Tensor conv3x3_weight_grad(const at::Tensor& x, const at::Tensor& dy) {
  TORCH_CHECK(x.dim() == 4 && dy.dim() == 4 && x.is_contiguous() &&
                  dy.is_contiguous() && x.scalar_type() == at::kFloat &&
                  dy.scalar_type() == at::kFloat,
              "expected contiguous float32 (N, H, W, C) and (N, H, W, K) "
              "tensors, got ", x.sizes(), " and ", dy.sizes());
  TORCH_CHECK(x.sizes().slice(0, 3) == dy.sizes().slice(0, 3),
              "input ", x.sizes(), " and output gradient ", dy.sizes(),
              " differ in N, H or W");
  const int N = x.size(0), H = x.size(1), W = x.size(2), C = x.size(3);
  const int K = dy.size(3);
  const TileGrid grid(H, W);
  const int64_t tiles = grid.size(N);
  const int64_t per_task = tiles_per_task(tiles);
  const int64_t tasks = (tiles + per_task - 1) / per_task;
  const float* xp = x.data_ptr<float>();
  const float* dyp = dy.data_ptr<float>();
  // One partial sum per chunk of tasks, added up in chunk order afterwards:
  // the result does not depend on which thread finishes first.
  std::mutex lock;
  std::vector<std::pair<int64_t, std::vector<float>>> partials;
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> v((size_t)kPos * per_task * C);
    std::vector<float> g((size_t)kPos * per_task * K);
    std::vector<float> acc((size_t)kPos * C * K, 0.f);
    for (int64_t task = begin; task < end; ++task) {
      const int64_t first = task * per_task;
      const int count = (int)std::min<int64_t>(per_task, tiles - first);
      int n, y0, x0;
      for (int i = 0; i < count; ++i) {
        grid.locate(first + i, &n, &y0, &x0);
        input_transform(xp + (int64_t)n * H * W * C, H, W, C, y0, x0,
                        v.data() + (int64_t)i * C, per_task * C);
        output_grad_transform(dyp + (int64_t)n * H * W * K, H, W, K, y0, x0,
                              g.data() + (int64_t)i * K, per_task * K);
      }
      // acc_p (C x K, row-major) += v_p^T g_p, in column-major terms
      // acc_p^T (K x C) += g_p^T (K x count) v_p (count x C).
      const float one = 1.f;
      for (int p = 0; p < kPos; ++p)
        sgemm_("N", "T", &K, &C, &count, &one, g.data() + p * per_task * K,
               &K, v.data() + p * per_task * C, &C, &one,
               acc.data() + (int64_t)p * C * K, &K);
    }
    std::lock_guard<std::mutex> guard(lock);
    partials.emplace_back(begin, std::move(acc));
  });
  std::sort(partials.begin(), partials.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  auto grad = at::zeros({kPos, C, K}, x.options());
  float* gp = grad.data_ptr<float>();
  for (const auto& partial : partials) {
    const std::vector<float>& acc = partial.second;
    for (size_t i = 0; i < acc.size(); ++i) gp[i] += acc[i];
  }
  return grad;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("conv3x3_relu_maxpool", &conv3x3_relu_maxpool,
        "Winograd conv3x3 + bias + ReLU + 3x3 stride-2 max pool");
  m.def("conv3x3_weight_grad", &conv3x3_weight_grad,
        "gradient of conv3x3 with respect to the transformed weights");
  m.def("conv3x3", &conv3x3, "Winograd F(4x4, 3x3) NHWC convolution",
        py::arg("x"), py::arg("u"), py::arg("bias"), py::arg("relu"),
        py::arg("projection") = py::none(),
        py::arg("proj_bias") = py::none());
}
