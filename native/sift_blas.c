/*
 * sgemm on TensorFlow.js wasm tensors, in place: the wasm backend keeps every
 * tensor in its WebAssembly memory, so a matMul can run on those bytes with
 * the machine's own BLAS (OpenBLAS, Accelerate) instead of wasm SIMD.
 * JavaScript passes the memory's ArrayBuffer and byte offsets; nothing is copied.
 * Also the model's elementwise work, each in one pass where wasm runs several
 * kernels: GELU x·σ(1.702x) and its gradient, layer normalisation and its
 * gradient, and x·w + b with the bias added inside the sgemm.
 */
#include <node_api.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#ifdef SIFT_ACCELERATE
#include <Accelerate/Accelerate.h>
#define SIFT_BLAS_NAME "Accelerate"
#else
#include <cblas.h>
#define SIFT_BLAS_NAME "OpenBLAS"
void openblas_set_num_threads(int);
#endif

#define CHECK(call)                                                      \
  do {                                                                   \
    if ((call) != napi_ok) {                                             \
      napi_throw_error(env, NULL, "sift_blas: bad arguments to sgemm");  \
      return NULL;                                                       \
    }                                                                    \
  } while (0)

/* sgemm(memory, aOffset, bOffset, outOffset, batch, m, n, k, transposeA, transposeB):
 * out[b] = op(a[b]) · op(b[b]) for each of `batch` row-major matrices, a [m,k] (or [k,m]), b [k,n] (or [n,k]). */
static napi_value Sgemm(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value args[10];
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  if (argc != 10) {
    napi_throw_error(env, NULL, "sift_blas: sgemm takes 10 arguments");
    return NULL;
  }
  void *memory;
  size_t length;
  CHECK(napi_get_arraybuffer_info(env, args[0], &memory, &length));
  int64_t a, b, out;
  int32_t batch, m, n, k;
  bool transposeA, transposeB;
  CHECK(napi_get_value_int64(env, args[1], &a));
  CHECK(napi_get_value_int64(env, args[2], &b));
  CHECK(napi_get_value_int64(env, args[3], &out));
  CHECK(napi_get_value_int32(env, args[4], &batch));
  CHECK(napi_get_value_int32(env, args[5], &m));
  CHECK(napi_get_value_int32(env, args[6], &n));
  CHECK(napi_get_value_int32(env, args[7], &k));
  CHECK(napi_get_value_bool(env, args[8], &transposeA));
  CHECK(napi_get_value_bool(env, args[9], &transposeB));
  const int64_t floats = (int64_t)length / 4;
  const int64_t aSize = (int64_t)m * k, bSize = (int64_t)k * n, outSize = (int64_t)m * n;
  if (a < 0 || b < 0 || out < 0 || batch < 0 || m < 0 || n < 0 || k < 0 || a % 4 || b % 4 || out % 4 ||
      a / 4 + batch * aSize > floats || b / 4 + batch * bSize > floats || out / 4 + batch * outSize > floats) {
    napi_throw_range_error(env, NULL, "sift_blas: sgemm operands lie outside the memory");
    return NULL;
  }
  float *base = (float *)memory;
  for (int32_t i = 0; i < batch; i++) {
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans, m, n, k, 1.0f,
                base + a / 4 + i * aSize, transposeA ? m : k, base + b / 4 + i * bSize, transposeB ? k : n, 0.0f,
                base + out / 4 + i * outSize, n);
  }
  return NULL;
}

/* The float array at byte offset `offset` holding `count` floats, or NULL (a RangeError thrown) if it lies outside the memory. */
static float *floats_at(napi_env env, void *memory, size_t length, int64_t offset, int64_t count) {
  if (offset < 0 || count < 0 || offset % 4 || offset / 4 + count > (int64_t)length / 4) {
    napi_throw_range_error(env, NULL, "sift_blas: operand lies outside the memory");
    return NULL;
  }
  return (float *)memory + offset / 4;
}

/* Resolves `k` operands: operand i starts at byte offset offsets[i] and holds counts[i] floats; false (a RangeError thrown) if any lies outside the memory. */
static bool operands(napi_env env, void *memory, size_t length, const double *offsets, const int64_t *counts, float **out, int k) {
  for (int i = 0; i < k; i++) {
    out[i] = floats_at(env, memory, length, (int64_t)offsets[i], counts[i]);
    if (!out[i]) return false;
  }
  return true;
}

/* Reads `want` arguments: the memory, then numbers (byte offsets, sizes, constants; doubles hold offsets exactly); NULL on bad arguments. */
static void *read_args(napi_env env, napi_callback_info info, size_t want, double *numbers, size_t *length) {
  size_t argc = 12;
  napi_value args[12];
  void *memory;
  if (napi_get_cb_info(env, info, &argc, args, NULL, NULL) != napi_ok || argc != want || napi_get_arraybuffer_info(env, args[0], &memory, length) != napi_ok) {
    napi_throw_error(env, NULL, "sift_blas: bad arguments");
    return NULL;
  }
  for (size_t i = 1; i < want; i++) {
    if (napi_get_value_double(env, args[i], &numbers[i - 1]) != napi_ok) {
      napi_throw_error(env, NULL, "sift_blas: bad arguments");
      return NULL;
    }
  }
  return memory;
}

/*
 * The elementwise loops, built for each x86-64 vector width and picked at load
 * time for the CPU (target_clones): with -ffast-math GCC vectorises expf
 * through glibc's libmvec, 8 or 16 lanes, where a baseline build runs no faster
 * than wasm's own sigmoid. Elsewhere, one portable build.
 */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SIFT_VECTORISED __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define SIFT_VECTORISED
#endif

SIFT_VECTORISED static void gelu_loop(const float *x, float *value, float *gate, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    /* Clamped so that expf stays finite (the build's -ffast-math assumes no infinities); σ is 0 or 1 to float precision beyond. */
    const float z = fminf(fmaxf(-1.702f * x[i], -80.0f), 80.0f);
    const float g = 1.0f / (1.0f + expf(z));
    gate[i] = g;
    value[i] = x[i] * g;
  }
}

SIFT_VECTORISED static void gelu_grad_loop(const float *dy, const float *x, const float *gate, float *dx, int64_t count) {
  for (int64_t i = 0; i < count; i++) {
    const float g = gate[i];
    dx[i] = dy[i] * g * (1.0f + 1.702f * x[i] * (1.0f - g));
  }
}

SIFT_VECTORISED static void layer_norm_rows(const float *x, const float *gain, const float *bias, float *value, float *normed, float *inverseStd, int64_t rows, int64_t width, float epsilon) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * width;
    float mean = 0.0f, variance = 0.0f;
    for (int64_t c = 0; c < width; c++) mean += xr[c];
    mean /= (float)width;
    for (int64_t c = 0; c < width; c++) variance += (xr[c] - mean) * (xr[c] - mean);
    const float inv = 1.0f / sqrtf(variance / (float)width + epsilon);
    inverseStd[r] = inv;
    float *nr = normed + r * width, *vr = value + r * width;
    for (int64_t c = 0; c < width; c++) {
      nr[c] = (xr[c] - mean) * inv;
      vr[c] = nr[c] * gain[c] + bias[c];
    }
  }
}

SIFT_VECTORISED static void layer_norm_grad_rows(const float *dy, const float *gain, const float *normed, const float *inverseStd, float *dx, int64_t rows, int64_t width) {
  for (int64_t r = 0; r < rows; r++) {
    const float *gr = dy + r * width, *nr = normed + r * width;
    float meanScaled = 0.0f, meanScaledNormed = 0.0f;
    for (int64_t c = 0; c < width; c++) {
      const float scaled = gr[c] * gain[c];
      meanScaled += scaled;
      meanScaledNormed += scaled * nr[c];
    }
    meanScaled /= (float)width;
    meanScaledNormed /= (float)width;
    float *dr = dx + r * width;
    for (int64_t c = 0; c < width; c++) dr[c] = (gr[c] * gain[c] - meanScaled - nr[c] * meanScaledNormed) * inverseStd[r];
  }
}

/* gelu(memory, x, value, gate, count): gate = σ(1.702x), value = x·gate. */
static napi_value Gelu(napi_env env, napi_callback_info info) {
  double n[4];
  size_t length;
  void *memory = read_args(env, info, 5, n, &length);
  if (!memory) return NULL;
  const int64_t count = (int64_t)n[3];
  float *p[3];
  if (!operands(env, memory, length, n, (int64_t[]){count, count, count}, p, 3)) return NULL;
  const float *x = p[0];
  float *value = p[1], *gate = p[2];
  gelu_loop(x, value, gate, count);
  return NULL;
}

/* geluGrad(memory, dy, x, gate, dx, count): dx = dy · gate · (1 + 1.702x(1 − gate)). */
static napi_value GeluGrad(napi_env env, napi_callback_info info) {
  double n[5];
  size_t length;
  void *memory = read_args(env, info, 6, n, &length);
  if (!memory) return NULL;
  const int64_t count = (int64_t)n[4];
  float *p[4];
  if (!operands(env, memory, length, n, (int64_t[]){count, count, count, count}, p, 4)) return NULL;
  const float *dy = p[0], *x = p[1], *gate = p[2];
  float *dx = p[3];
  gelu_grad_loop(dy, x, gate, dx, count);
  return NULL;
}

/* layerNorm(memory, x, gain, bias, value, normed, inverseStd, rows, width, epsilon), per row of x [rows, width]:
 * inverseStd = 1/√(var + ε), normed = (x − mean)·inverseStd, value = normed·gain + bias. */
static napi_value LayerNorm(napi_env env, napi_callback_info info) {
  double n[9];
  size_t length;
  void *memory = read_args(env, info, 10, n, &length);
  if (!memory) return NULL;
  const int64_t rows = (int64_t)n[6], width = (int64_t)n[7];
  const float epsilon = (float)n[8];
  float *p[6];
  if (width <= 0 || !operands(env, memory, length, n, (int64_t[]){rows * width, width, width, rows * width, rows * width, rows}, p, 6)) return NULL;
  const float *x = p[0], *gain = p[1], *bias = p[2];
  float *value = p[3], *normed = p[4], *inverseStd = p[5];
  layer_norm_rows(x, gain, bias, value, normed, inverseStd, rows, width, epsilon);
  return NULL;
}

/* layerNormGrad(memory, dy, gain, normed, inverseStd, dx, rows, width): with ĝ = dy·gain,
 * dx = (ĝ − mean(ĝ) − normed·mean(ĝ·normed))·inverseStd, per row. */
static napi_value LayerNormGrad(napi_env env, napi_callback_info info) {
  double n[7];
  size_t length;
  void *memory = read_args(env, info, 8, n, &length);
  if (!memory) return NULL;
  const int64_t rows = (int64_t)n[5], width = (int64_t)n[6];
  float *p[5];
  if (width <= 0 || !operands(env, memory, length, n, (int64_t[]){rows * width, width, rows * width, rows, rows * width}, p, 5)) return NULL;
  const float *dy = p[0], *gain = p[1], *normed = p[2], *inverseStd = p[3];
  float *dx = p[4];
  layer_norm_grad_rows(dy, gain, normed, inverseStd, dx, rows, width);
  return NULL;
}

/* affine(memory, x, w, b, out, m, n, k): out = x·w + b, x [m,k], w [k,n], b [n] (the bias copied in, then sgemm adds onto it). */
static napi_value Affine(napi_env env, napi_callback_info info) {
  double v[7];
  size_t length;
  void *memory = read_args(env, info, 8, v, &length);
  if (!memory) return NULL;
  const int64_t m = (int64_t)v[4], n = (int64_t)v[5], k = (int64_t)v[6];
  float *p[4];
  if (!operands(env, memory, length, v, (int64_t[]){m * k, k * n, n, m * n}, p, 4)) return NULL;
  const float *x = p[0], *w = p[1], *b = p[2];
  float *out = p[3];
  for (int64_t r = 0; r < m; r++) memcpy(out + r * n, b, (size_t)n * sizeof(float));
  if (m > 0 && n > 0 && k > 0) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)n, (int)k, 1.0f, x, (int)k, w, (int)n, 1.0f, out, (int)n);
  return NULL;
}

/* setThreads(n): threads the BLAS may use for one call. Sift parallelises
 * across its own replica threads, so each of them asks for 1. */
static napi_value SetThreads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value args[1];
  int32_t threads;
  CHECK(napi_get_cb_info(env, info, &argc, args, NULL, NULL));
  CHECK(napi_get_value_int32(env, args[0], &threads));
#ifndef SIFT_ACCELERATE
  openblas_set_num_threads(threads < 1 ? 1 : threads);
#endif
  return NULL;
}

static napi_value Init(napi_env env, napi_value exports) {
  napi_value sgemm, gelu, geluGrad, layerNorm, layerNormGrad, affine, setThreads, name;
  if (napi_create_function(env, "sgemm", NAPI_AUTO_LENGTH, Sgemm, NULL, &sgemm) != napi_ok) return NULL;
  if (napi_create_function(env, "gelu", NAPI_AUTO_LENGTH, Gelu, NULL, &gelu) != napi_ok) return NULL;
  if (napi_create_function(env, "geluGrad", NAPI_AUTO_LENGTH, GeluGrad, NULL, &geluGrad) != napi_ok) return NULL;
  if (napi_create_function(env, "layerNorm", NAPI_AUTO_LENGTH, LayerNorm, NULL, &layerNorm) != napi_ok) return NULL;
  if (napi_create_function(env, "layerNormGrad", NAPI_AUTO_LENGTH, LayerNormGrad, NULL, &layerNormGrad) != napi_ok) return NULL;
  if (napi_create_function(env, "affine", NAPI_AUTO_LENGTH, Affine, NULL, &affine) != napi_ok) return NULL;
  if (napi_create_function(env, "setThreads", NAPI_AUTO_LENGTH, SetThreads, NULL, &setThreads) != napi_ok) return NULL;
  if (napi_create_string_utf8(env, SIFT_BLAS_NAME, NAPI_AUTO_LENGTH, &name) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "sgemm", sgemm) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "gelu", gelu) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "geluGrad", geluGrad) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "layerNorm", layerNorm) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "layerNormGrad", layerNormGrad) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "affine", affine) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "setThreads", setThreads) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "blas", name) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
