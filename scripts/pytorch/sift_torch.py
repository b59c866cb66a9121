"""
Sift's dual encoder, loss and optimizer written in plain PyTorch, as a yardstick
for `npm run bench:speed -- --vs-pytorch`.

It mirrors src/core/model/dualEncoder.ts, ops.ts, losses.ts and
src/core/train/optimizer.ts: the same parameter names and shapes, the same
initialisation distributions, the same maths. The benchmark checks the port
against Sift on shared weights before it times anything.

It runs as a server: one JSON command per line on stdin, one JSON answer per
line on stdout (stderr is for humans), so the benchmark can alternate Sift and
PyTorch rounds in one run on a shared, noisy machine. With Debian's torch, run
it through run.sh, which puts OpenBLAS in front of the reference BLAS Debian's
torch links; any other Python with torch can run it directly (bench:speed
--torch-python). It needs torch only (no numpy).

The device is the init command's `device` (the benchmark's --torch-device), else
SIFT_TORCH_DEVICE, else cpu. On CUDA, float32 matmuls run in full float32
(TF32 off), as WebGPU's float32 shaders do, and every timed run ends with
torch.cuda.synchronize(), so a time covers the device's work, not only its launch.

    bash scripts/pytorch/run.sh --check     # BLAS in use and a matmul's GFLOP/s
    SIFT_TORCH_DEVICE=cuda python3 scripts/pytorch/sift_torch.py --check
"""

import array
import base64
import ctypes
import json
import math
import os
import statistics
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---- the model ---------------------------------------------------------------


def normal_(shape, std):
    return nn.Parameter(torch.randn(*shape) * std)


class Dense(nn.Module):
    """x · w + b over the last axis. w is [in, out] like Sift's (nn.Linear stores [out, in])."""

    def __init__(self, n_in, n_out, std, bias=True):
        super().__init__()
        self.w = normal_((n_in, n_out), std)
        self.b = nn.Parameter(torch.zeros(n_out)) if bias else None

    def forward(self, x):
        y = x @ self.w
        return y + self.b if self.b is not None else y


class LayerNorm(nn.Module):
    """Layer norm with Sift's parameter names (g, b) and epsilon 1e-5."""

    def __init__(self, width):
        super().__init__()
        self.g = nn.Parameter(torch.ones(width))
        self.b = nn.Parameter(torch.zeros(width))

    def forward(self, x):
        return F.layer_norm(x, (x.shape[-1],), self.g, self.b, 1e-5)


def gelu(x):
    # Sift's GELU is the sigmoid approximation x·σ(1.702x), not torch's erf GELU.
    return x * torch.sigmoid(1.702 * x)


def l2_normalize(x):
    # Epsilon inside the square root, as Sift (F.normalize clamps the norm instead).
    return x / torch.sqrt((x * x).sum(1, keepdim=True) + 1e-6)


class Mlp(nn.Module):
    def __init__(self, n_in, hidden, std_out):
        super().__init__()
        self.w1 = normal_((n_in, hidden), math.sqrt(1 / n_in))
        self.b1 = nn.Parameter(torch.zeros(hidden))
        self.w2 = normal_((hidden, n_in), std_out)
        self.b2 = nn.Parameter(torch.zeros(n_in))

    def forward(self, x, w1=None, w2=None, b2=None):
        # w1/w2/b2 stand in for the weights at a coarser image resolution (Flexi).
        w1 = self.w1 if w1 is None else w1
        w2 = self.w2 if w2 is None else w2
        b2 = self.b2 if b2 is None else b2
        return gelu(x @ w1 + self.b1) @ w2 + b2


class MixerBlock(nn.Module):
    def __init__(self, tokens, width, token_hidden, channel_hidden, depth):
        super().__init__()
        self.ln1 = LayerNorm(width)
        # The second layers start small (÷ depth) so the residual stream starts near identity.
        self.token = Mlp(tokens, token_hidden, math.sqrt(1 / token_hidden) / depth)
        self.ln2 = LayerNorm(width)
        self.channel = Mlp(width, channel_hidden, math.sqrt(1 / channel_hidden) / depth)

    def forward(self, x, coarse=None):
        # Token mixing: an MLP across tokens, shared by every channel: [b, t, c] → [b, c, t] and back.
        if coarse is None:
            mixed = self.token(self.ln1(x).transpose(1, 2))
        else:
            # Lower resolution: each coarse token stands for the s×s fine tokens it covers
            # (first layer: rows summed); each coarse output is the mean of those fine outputs.
            up, down = coarse
            mixed = self.token(self.ln1(x).transpose(1, 2), w1=up @ self.token.w1, w2=self.token.w2 @ down, b2=self.token.b2 @ down)
        x = x + mixed.transpose(1, 2)
        # Channel mixing: an MLP across channels, shared by every token.
        return x + self.channel(self.ln2(x))


class Mixer(nn.Module):
    """Sift names blocks block0, block1, … and the final norm ln_out."""

    def __init__(self, tokens, width, token_hidden, channel_hidden, depth):
        super().__init__()
        self.depth = depth
        for i in range(depth):
            self.add_module(f"block{i}", MixerBlock(tokens, width, token_hidden, channel_hidden, depth))
        self.ln_out = LayerNorm(width)

    def forward(self, x, coarse=None):
        for i in range(self.depth):
            x = getattr(self, f"block{i}")(x, coarse)
        return self.ln_out(x)


def replication_matrix(grid, scale):
    """[coarse tokens, fine tokens] 0/1: which fine tokens each coarse token covers (as Sift's)."""
    coarse = grid // scale
    m = torch.zeros(coarse * coarse, grid * grid)
    for y in range(grid):
        for x in range(grid):
            m[(y // scale) * coarse + x // scale, y * grid + x] = 1
    return m


class ImageTower(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.image_size, self.patch_size = c["imageSize"], c["patchSize"]
        self.grid = c["imageSize"] // c["patchSize"]
        tokens = self.grid * self.grid
        patch_length = c["patchSize"] ** 2 * 3
        self.patch = Dense(patch_length, c["imageWidth"], math.sqrt(1 / patch_length))
        self.pos = normal_((tokens, c["imageWidth"]), 0.02)
        self.mixer = Mixer(tokens, c["imageWidth"], c["imageTokenHidden"], c["imageChannelHidden"], c["imageDepth"])
        self.head = Dense(c["imageWidth"], c["embedDim"], math.sqrt(1 / c["imageWidth"]), bias=False)
        self.replication = {}

    def patchify(self, images, scale=1):
        """[n, H, W, 3] → [n, tokens, p·p·3]: tokens row-major over the patch grid, each patch (y, x, channel) row-major."""
        n, p = images.shape[0], self.patch_size
        if scale > 1:
            # Box-filter downsampling, as Sift's patchify.
            images = F.avg_pool2d(images.permute(0, 3, 1, 2), scale).permute(0, 2, 3, 1)
        grid = images.shape[1] // p
        return images.reshape(n, grid, p, grid, p, 3).permute(0, 1, 3, 2, 4, 5).reshape(n, grid * grid, p * p * 3)

    def forward(self, images, scale=1):
        x = self.patch(self.patchify(images, scale))
        if scale == 1:
            x = self.mixer(x + self.pos)
        else:
            if scale not in self.replication:
                self.replication[scale] = replication_matrix(self.grid, scale).to(x.device)
            up = self.replication[scale]
            x = self.mixer(x + up @ self.pos / (scale * scale), (up, up.t() / (scale * scale)))
        return l2_normalize(self.head(x.mean(1)))


class TextTower(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed = normal_((c["vocabSize"], c["textWidth"]), 0.02)
        self.pos = normal_((c["textLength"], c["textWidth"]), 0.02)
        self.mixer = Mixer(c["textLength"], c["textWidth"], c["textTokenHidden"], c["textChannelHidden"], c["textDepth"])
        self.head = Dense(c["textWidth"], c["embedDim"], math.sqrt(1 / c["textWidth"]), bias=False)

    def forward(self, ids):
        x = self.mixer(F.embedding(ids, self.embed) + self.pos)
        # Mean over the caption's real tokens only (id 0 is padding).
        mask = (ids != 0).unsqueeze(2).to(x.dtype)
        pooled = (x * mask).sum(1) / mask.sum(1).clamp(min=1)
        return l2_normalize(self.head(pooled))


class DualEncoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.image = ImageTower(c)
        self.text = TextTower(c)
        self.log_temperature = nn.Parameter(torch.tensor(math.log(c["initTemperature"])))
        self.logit_bias = nn.Parameter(torch.tensor(float(c["initBias"])))

    def sift_named_parameters(self):
        """(Sift's ParamStore name, parameter), e.g. image/block0/token/w1."""
        for name, param in self.named_parameters():
            if name == "log_temperature":
                yield "logit/log_temperature", param
            elif name == "logit_bias":
                yield "logit/bias", param
            else:
                # image.mixer.block0.token.w1 → image/block0/token/w1 (Sift has no "mixer" level).
                yield name.replace(".mixer.", ".").replace(".", "/"), param


def sigmoid_loss(image, text, log_temperature, bias):
    """SigLIP: ℓij = softplus(−zij·(t⟨xi, yj⟩ + b)), z = +1 on the diagonal, −1 off it; loss = Σ ℓ / batch."""
    batch = image.shape[0]
    logits = image @ text.t() * log_temperature.exp() + bias
    signs = 2 * torch.eye(batch, device=logits.device) - 1
    pair_loss = F.softplus(-signs * logits)
    return pair_loss.sum() / batch, pair_loss


# ---- the optimizer -----------------------------------------------------------


def learning_rate_at(step, o):
    """Linear warm-up, then cosine decay to minLrRatio of the peak (optimizer.ts learningRateAt)."""
    if step < o["warmupSteps"]:
        return o["learningRate"] * (step + 1) / o["warmupSteps"]
    progress = min(1, (step - o["warmupSteps"]) / max(1, o["totalSteps"] - o["warmupSteps"]))
    cosine = 0.5 * (1 + math.cos(math.pi * progress))
    return o["learningRate"] * (o["minLrRatio"] + (1 - o["minLrRatio"]) * cosine)


def make_optimizer(model, o):
    # Decoupled weight decay on matrices only, and not on positions (optimizer.ts `decays`).
    decay, rest = [], []
    for name, param in model.sift_named_parameters():
        (decay if param.dim() == 2 and not name.endswith("/pos") else rest).append(param)
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": o["weightDecay"]}, {"params": rest, "weight_decay": 0.0}],
        lr=o["learningRate"],
        betas=(o["beta1"], o["beta2"]),
        eps=o["epsilon"],
    )


def clip_grad_norm(params, max_norm):
    """
    Global-norm clipping as Sift: scale by max/norm only when norm > max (torch's
    clip_grad_norm_ adds 1e-6 to the norm). Returns the pre-clip norm: a float
    on the CPU; on a GPU a 0-d tensor, the clipping decided on the device, so
    the step does not wait for the norm to reach the host.
    """
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))
    if norm.device.type != "cpu":
        if max_norm > 0:
            scale = torch.clamp(max_norm / norm, max=1.0)
            for g in grads:
                g.mul_(scale)
        return norm
    norm = float(norm)
    if max_norm > 0 and norm > max_norm:
        for g in grads:
            g.mul_(max_norm / norm)
    return norm


# ---- the server ----------------------------------------------------------------


def device_of(msg):
    """The init command's device, else SIFT_TORCH_DEVICE, else the CPU."""
    device = torch.device(msg.get("device") or os.environ.get("SIFT_TORCH_DEVICE") or "cpu")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {device} asked for, but torch {torch.__version__} sees no CUDA device (torch.version.cuda = {torch.version.cuda})")
    return device


def fp32_matmuls(device):
    """Full float32 matmuls on CUDA (TF32 off): the precision WebGPU's float32 shaders compute in. Returns what was set."""
    if device.type != "cuda":
        return "float32"
    # Full float32 is torch's default; said explicitly, newest API first (an older torch has no fp32_precision).
    try:
        torch.backends.cuda.matmul.fp32_precision = "ieee"  # torch >= 2.9
        return "float32 (TF32 off: torch.backends.cuda.matmul.fp32_precision = 'ieee')"
    except Exception:
        pass
    torch.set_float32_matmul_precision("highest")
    return "float32 (TF32 off: torch.set_float32_matmul_precision('highest'))"


def device_info(device):
    info = {"device": str(device)}
    if device.type == "cuda":
        info["deviceName"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        capability = torch.cuda.get_device_capability(device)
        info["capability"] = f"{capability[0]}.{capability[1]}"
    return info


def synchronizer(device):
    """What a timed run calls before reading the clock: waits for the device's queued work (nothing on the CPU)."""
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


class Bench:
    def __init__(self, msg):
        self.config = msg["model"]
        self.optim_config = msg["optimizer"]
        self.threads = int(msg.get("threads", 2))
        torch.set_num_threads(self.threads)
        blas_threads(self.threads)
        self.device = device_of(msg)
        self.precision = fp32_matmuls(self.device)
        self.sync = synchronizer(self.device)
        torch.manual_seed(int(msg.get("seed", 0)))
        # Initialised on the CPU (the same draws whatever the device), then moved.
        self.model = DualEncoder(self.config).to(self.device)
        self.params = [p for _, p in self.model.sift_named_parameters()]
        self.optimizer = make_optimizer(self.model, self.optim_config)
        self.step = 0
        self.data = {}
        self.generator = torch.Generator().manual_seed(int(msg.get("seed", 0)))

    def random_batch(self, count):
        """Random images in [0, 1) and captions of 3..textLength tokens, padded with 0, kept per size, on the device."""
        if count not in self.data:
            c, g = self.config, self.generator
            images = torch.rand((count, c["imageSize"], c["imageSize"], 3), generator=g)
            ids = torch.zeros((count, c["textLength"]), dtype=torch.int64)
            for row in range(count):
                length = int(torch.randint(min(3, c["textLength"]), c["textLength"] + 1, (1,), generator=g))
                ids[row, :length] = torch.randint(1, c["vocabSize"], (length,), generator=g)
            self.data[count] = (images.to(self.device), ids.to(self.device))
        return self.data[count]

    def train_on(self, images, ids, scale=1):
        """One optimizer step: forward, loss, backward, clip, AdamW. Returns the loss and the pre-clip gradient norm."""
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate_at(self.step, self.optim_config)
        self.optimizer.zero_grad(set_to_none=True)
        m = self.model
        loss, _ = sigmoid_loss(m.image(images, scale), m.text(ids), m.log_temperature, m.logit_bias)
        loss.backward()
        norm = clip_grad_norm(self.params, self.optim_config["clipNorm"])
        self.optimizer.step()
        self.step += 1
        return float(loss), float(norm)

    def score(self, images, ids, scale=1):
        """The no-grad forward of a super-batch and its B × B pair-loss matrix, read back to the host (Sift reads it back too)."""
        m = self.model
        with torch.no_grad():
            _, pair_loss = sigmoid_loss(m.image(images, scale), m.text(ids), m.log_temperature, m.logit_bias)
        return pair_loss.cpu()

    def reference_loss(self, size):
        # A stand-in for the reference model's pair losses, on the host: fixed, so only the learner is timed (Sift's bench does the same).
        key = ("reference", size)
        if key not in self.data:
            self.data[key] = torch.rand((size, size), generator=self.generator) * 2
        return self.data[key]


def select_joint(scores, count, chunks, temperature=1.0, generator=None):
    """
    JEST's joint sampler for pairwise scores (selectors.ts selectJoint with
    pairwiseScorer, normalization 'sum'): the first chunk by each candidate's
    own score, every later chunk by S_kk + Σ_{i chosen}(S_ik + S_ki), each
    chunk drawn without replacement with Gumbel-top-k.
    """
    size = scores.shape[0]
    own = torch.diagonal(scores).clone()
    cross = torch.zeros(size)
    masked = torch.zeros(size, dtype=torch.bool)
    n = max(1, min(chunks, count))
    sizes = [count // n + (1 if i < count % n else 0) for i in range(n)]
    picked = []
    for chunk_size in sizes:
        logits = own + cross
        keys = logits / temperature - torch.log(-torch.log(torch.rand(size, generator=generator) + 1e-12))
        keys[masked] = -math.inf
        drawn = torch.topk(keys, chunk_size).indices
        masked[drawn] = True
        picked.extend(drawn.tolist())
        cross += scores[drawn, :].sum(0) + scores[:, drawn].sum(1)
    return torch.tensor(picked, dtype=torch.int64)


def median_seconds(fn, repeats, sync=lambda: None):
    """Seconds of `repeats` runs after a warm-up run; `sync` waits for the device before each clock reading."""
    fn()  # warm-up: first-touch allocations and caches after the other side ran
    sync()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples


# Little-endian float32 / int32 in base64, as the benchmark sends and reads them (x86 and ARM are little-endian).
def decode_f32(text, shape):
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.float32).reshape(shape)


def decode_i32(text, shape):
    return torch.frombuffer(bytearray(base64.b64decode(text)), dtype=torch.int32).to(torch.int64).reshape(shape)


def encode_f32(tensor):
    return base64.b64encode(array.array("f", tensor.detach().float().cpu().reshape(-1).tolist()).tobytes()).decode("ascii")


def blas_library():
    """The BLAS shared object actually mapped into this process (what torch's sgemm calls)."""
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if len(line.split()) > 5}
    return sorted(p for p in paths if "blas" in os.path.basename(p) or "lapack" in os.path.basename(p))


def openblas():
    try:
        lib = ctypes.CDLL("libopenblas.so.0", mode=os.RTLD_NOLOAD | os.RTLD_LAZY)
    except OSError:
        return None
    return lib


def blas_threads(n):
    # torch.set_num_threads does not reach a generic-BLAS build's OpenBLAS, which
    # would otherwise start one thread per core whatever torch was told.
    lib = openblas()
    if lib is not None:
        lib.openblas_set_num_threads(int(n))


def malloc_in_use():
    with open("/proc/self/maps") as maps:
        if any("tcmalloc" in line for line in maps):
            return "tcmalloc"
    return "glibc, thresholds raised (run.sh)" if "mmap_threshold" in os.environ.get("GLIBC_TUNABLES", "") else "glibc defaults"


def blas_info():
    info = {"libraries": blas_library(), "torchBlas": "generic (libblas.so.3)" if "BLAS_INFO=generic" in torch.__config__.show() else "see torch.__config__.show()"}
    lib = openblas()
    if lib is not None:
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        info["openblas"] = {"core": lib.openblas_get_corename().decode(), "config": lib.openblas_get_config().decode(), "threads": lib.openblas_get_num_threads()}
    return info


def matmul_gflops(n, repeats, device=torch.device("cpu")):
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    seconds, samples = median_seconds(lambda: torch.mm(a, b), repeats, synchronizer(device))
    return 2 * n**3 / seconds / 1e9, seconds, samples


def profile_train(bench, batch, steps):
    """Per-op CPU time of training steps (torch.profiler), top ops by self time."""
    from torch.profiler import ProfilerActivity, profile

    images, ids = bench.random_batch(batch)
    for _ in range(3):  # warm-up: the allocator's pools and OpenBLAS's buffers
        bench.train_on(images, ids)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            bench.train_on(images, ids)
    averages = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in averages)
    rows = [
        {"op": e.key, "calls": e.count, "selfMs": e.self_cpu_time_total / 1000 / steps, "share": e.self_cpu_time_total / total}
        for e in averages[:15]
    ]
    return {"stepMs": total / 1000 / steps, "rows": rows, "table": prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15)}


def handle(bench, msg):
    cmd = msg["cmd"]
    if cmd == "init":
        bench = Bench(msg)
        shapes = {name: list(p.shape) for name, p in bench.model.sift_named_parameters()}
        return bench, {
            "parameters": sum(p.numel() for p in bench.params),
            "shapes": shapes,
            "torch": torch.__version__,
            **device_info(bench.device),
            "matmulPrecision": bench.precision,
            "threads": torch.get_num_threads(),
            "blas": blas_info(),
            "malloc": malloc_in_use(),
            "ompWaitPolicy": os.environ.get("OMP_WAIT_POLICY", "(unset: OpenMP's default, active)"),
        }
    if cmd == "blas":
        return bench, blas_info()
    if cmd == "matmul":
        device = bench.device if bench is not None else device_of(msg)
        gflops, seconds, samples = matmul_gflops(int(msg.get("n", 1024)), int(msg.get("repeats", 5)), device)
        return bench, {"gflops": gflops, "seconds": seconds, "samples": samples}
    if cmd == "quit":
        return None, {"bye": True}
    if bench is None:
        raise ValueError(f"{cmd} before init")
    repeats = int(msg.get("repeats", 5))
    scale = int(msg.get("scale", 1))
    if cmd == "train":
        images, ids = bench.random_batch(int(msg["batch"]))
        seconds, samples = median_seconds(lambda: bench.train_on(images, ids, scale), repeats, bench.sync)
        return bench, {"seconds": seconds, "samples": samples}
    if cmd == "score":
        images, ids = bench.random_batch(int(msg["superBatch"]))
        seconds, samples = median_seconds(lambda: bench.score(images, ids, scale), repeats, bench.sync)
        return bench, {"seconds": seconds, "samples": samples}
    if cmd == "jest_step":
        batch, super_batch, chunks = int(msg["batch"]), int(msg["superBatch"]), int(msg.get("chunks", 16))
        images, ids = bench.random_batch(super_batch)
        reference = bench.reference_loss(super_batch)

        def step():
            learnability = bench.score(images, ids) - reference
            picked = select_joint(learnability, batch, chunks, generator=bench.generator).to(images.device)
            bench.train_on(images[picked], ids[picked])

        seconds, samples = median_seconds(step, repeats, bench.sync)
        return bench, {"seconds": seconds, "samples": samples}
    if cmd == "profile":
        return bench, profile_train(bench, int(msg["batch"]), int(msg.get("steps", 5)))
    # ---- the equivalence check: Sift's weights and inputs in, PyTorch's answers out.
    if cmd == "load":
        by_name = dict(bench.model.sift_named_parameters())
        with torch.no_grad():
            for name, value in msg["params"].items():
                by_name[name].copy_(decode_f32(value, by_name[name].shape))
        bench.step = int(msg.get("step", 0))
        bench.optimizer = make_optimizer(bench.model, bench.optim_config)
        return bench, {"loaded": len(msg["params"])}
    if cmd in ("forward", "train_once"):
        c, count = bench.config, int(msg["count"])
        images = decode_f32(msg["images"], (count, c["imageSize"], c["imageSize"], 3)).to(bench.device)
        ids = decode_i32(msg["ids"], (count, c["textLength"])).to(bench.device)
        if cmd == "train_once":
            loss, norm = bench.train_on(images, ids, scale)
            return bench, {"loss": loss, "gradNorm": norm}
        m = bench.model
        with torch.no_grad():
            image, text = m.image(images, scale), m.text(ids)
            loss, pair_loss = sigmoid_loss(image, text, m.log_temperature, m.logit_bias)
        return bench, {"loss": float(loss), "pairLoss": encode_f32(pair_loss), "image": encode_f32(image), "text": encode_f32(text)}
    raise ValueError(f"unknown command {cmd}")


def serve():
    bench = None
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            bench, answer = handle(bench, json.loads(line))
            reply = {"ok": True, **answer}
        except Exception as error:  # answered, not fatal: the benchmark decides whether to go on
            reply = {"ok": False, "error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()
        if reply.get("bye"):
            break


def check():
    """Which BLAS torch calls (or which GPU), and what a 1024³ float32 matmul reaches with it."""
    threads = int(os.environ.get("SIFT_TORCH_THREADS", "2"))
    torch.set_num_threads(threads)
    blas_threads(threads)
    device = device_of({})
    precision = fp32_matmuls(device)
    gflops, seconds, _ = matmul_gflops(1024, 9, device)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), **device_info(device), "matmulPrecision": precision, "blas": blas_info(), "matmul1024": {"gflops": round(gflops, 1), "seconds": seconds}}, indent=2))


if __name__ == "__main__":
    if "--check" in sys.argv[1:]:
        check()
    else:
        serve()
