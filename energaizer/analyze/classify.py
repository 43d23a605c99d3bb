"""Sort GPU kernels into op classes by kernel name, with the launching CPU op as a fallback.

The kernel name decides first. Rules are tried in order and the first match wins, so the
specific families (attention, normalization, convolution) come before the general ones
whose words they share ("gemm" in implicit-GEMM convolutions, "cutlass" in FlashAttention
template arguments). Each rule also sets how far the launching CPU op may override it:

- A specific name keeps its class whatever the CPU op is.
- A building block (ATen TensorIterator kernel, CUB reduce or scan, Triton pointwise or
  reduction kernel) takes the CPU op's class when that class is a composite one
  (normalization, softmax, attention or embedding).
- A generic name (plain "Kernel", CUTLASS `Kernel<...>` with an unknown template, Triton
  kernels named only by their arguments) takes the CPU op's class whenever there is one.

A name that matches no rule takes the CPU op's class, else `OpClass.OTHER`.

Choices for kernels that fit more than one class:

- cuBLAS GEMM kernels launched by a cuDNN convolution stay `gemm`, because the kernel
  itself is a GEMM.
- cuBLAS helper kernels inside a GEMM call (split-K reduce, cuBLASLt epilogue, scal, dot
  and its 1-block reduce) are `gemm` because they are part of that call's work.
- cuDNN convolution helpers (offset tables, Winograd and FFT transforms, im2col, split-K
  weight-gradient reduce) are `convolution`, because they exist only as steps of a
  convolution. Plain layout transposes (NCHW to NHWC and back) and tensor scaling are
  `elementwise`.
- `indexSelectLargeIndex` and `indexSelectSmallIndex` are `embedding`. They gather whole
  rows by index, the access pattern of an embedding lookup, and `aten::embedding` runs
  them through `aten::index_select`.
- FBGEMM sparse-feature bookkeeping (permutes of lengths, indices and pooled embeddings,
  bucketize, bounds check, index linearization, gradient recat) is `embedding`. These
  kernels only feed table-batched embedding lookups, and their size follows the index
  count. FBGEMM FP8 and HFP8 quantize kernels are `elementwise`.
- Pooling, forward and backward, is `reduction` because each output reduces a window.
  Scans (cumsum, CUB DeviceScan) are `reduction` too.
- Sorting, top-k and selection kernels have no class of their own, so they take their
  CPU op's class (sorting inside an embedding backward counts as `embedding`), else `other`.
- Fused cross-entropy kernels are `softmax`, because they compute a row-wise log-softmax.
- `nll_loss` forward is `reduction` (it sums over the batch) and its backward, which
  writes one gradient per row, is `elementwise`.
- Optimizer kernels (`multi_tensor_apply_kernel`) are `elementwise`, except the L2-norm
  ones behind gradient clipping, which are `reduction`.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple

from energaizer.analyze.opclass import OpClass

# Classes whose CPU ops launch generic ATen or Triton building blocks as part of their work.
_COMPOSITE_CLASSES = frozenset(
    {OpClass.NORMALIZATION, OpClass.SOFTMAX, OpClass.ATTENTION, OpClass.EMBEDDING}
)
_ALL_CLASSES = frozenset(OpClass)
_CATEGORIES = frozenset({"kernel", "memcpy", "memset"})
_NONE: frozenset[OpClass] = frozenset()


class _Rule(NamedTuple):
    pattern: re.Pattern[str]
    op_class: OpClass
    # CPU-op classes that replace `op_class` when the launching op has one of them.
    yields_to: frozenset[OpClass] = _NONE


def _rule(regex: str, op_class: OpClass, yields_to: frozenset[OpClass] = _NONE) -> _Rule:
    return _Rule(re.compile(regex), op_class, yields_to)


_NAME_RULES: tuple[_Rule, ...] = (
    # Copies and fills that a trace records under the kernel category.
    _rule(r"^Memcpy\b", OpClass.MEMCPY),
    _rule(r"^Memset\b", OpClass.MEMSET),
    # NCCL collectives and point-to-point: ncclKernel_*, ncclDevKernel_*.
    _rule(r"\bnccl", OpClass.COMMUNICATION),
    # FlashAttention (flash_fwd_*, flash_bwd_*, also vendored in PyTorch as pytorch_flash),
    # PyTorch and xFormers memory-efficient attention (fmha_cutlassF/B, AttentionKernel),
    # and names that contain sdpa, flex_attention or paged_attention.
    _rule(
        r"(?i)flash_?attn|flash_(?:fwd|bwd)|fmha|Attention(?:Backward)?Kernel"
        r"|attention_kernel|flex_attention|sdpa|paged_attention",
        OpClass.ATTENTION,
    ),
    # Sorting and selection: CUB radix/merge sort, ATen sort and top-k, CUB select.
    _rule(
        r"(?i:(?<!search)sort)|gatherTopK|radixFindKthValue|[sm]btopk"
        r"|DeviceSelect|DeviceCompact",
        OpClass.OTHER,
        _ALL_CLASSES,
    ),
    # Softmax: ATen softmax_warp_*, cunn_SoftMax*, cuDNN softmax, Triton fused softmax,
    # fused cross-entropy (row-wise log-softmax).
    _rule(r"(?i)softmax|cross_?entropy", OpClass.SOFTMAX),
    # Normalization: cuDNN batch norm (bn_fw_*, bn_bw_*), ATen batch, layer and group norm
    # kernels, fused layer and RMS norm kernels (cuApply*Norm, Triton *_layer_norm).
    _rule(
        r"(?i)(?:batch|layer|group|instance|rms)_?norm|\bbn_(?:fw|bw)"
        r"|RowwiseMoments|Compute\w*FusedParams|ComputeInternalGradients|GammaBetaBackward"
        r"|cuApply(?:Layer|RMS)Norm|cuComputePartGradGammaBeta|cuComputeGradGammaBeta",
        OpClass.NORMALIZATION,
    ),
    # Triton (PyTorch Inductor) reductions that end in rsqrt after a mean are norms.
    _rule(r"^triton_(?:red|per)_fused\w*mean\w*rsqrt", OpClass.NORMALIZATION),
    # cuDNN layout transposes and tensor scaling: plain data movement.
    _rule(
        r"(?i)nchwToNhwc|nhwcToNchw|nchw2nhwc|nhwc2nchw|scalePackedTensor", OpClass.ELEMENTWISE
    ),
    *(
        _rule(regex, OpClass.CONVOLUTION)
        for regex in (
            # cuDNN engines: volta_scudnn_*, cudnn_infer_*, turing_h1688cudnn_*.
            r"scudnn|cudnn_(?:infer|train)_|[a-z0-9]cudnn_\d+x\d+",
            # cuDNN kernels and helpers: cudnn::cnn::*, offset tables, CUTLASS inside cuDNN.
            r"\bcudnn::(?:cnn|detail|winograd\w*)::|cask_cudnn|cutlass_\w*cudnn",
            # Implicit-GEMM and direct engines, Winograd and FFT transforms, im2col.
            r"(?:fprop|dgrad|wgrad)|convolve_|winograd|\bfft2d_(?:r2c|c2r)|flip_filter",
            # ATen convolutions: depthwise, slow_conv (im2col/col2im), CUTLASS conv kernels.
            r"(?i)convolution|conv_depthwise|conv\dd|\bim2col|\bcol2im|\bvol2col|\bcol2vol",
        )
    ),
    # Triton templates: matrix multiplies (mm, addmm, bmm) and convolutions.
    _rule(r"^triton_tem_fused\w*?conv", OpClass.CONVOLUTION),
    _rule(r"^triton_tem_", OpClass.GEMM),
    # cuBLAS split-K reduction and other helpers whose arguments are cuBLAS types.
    _rule(r"splitKreduce|cublas", OpClass.GEMM),
    # cuBLAS (volta_sgemm_*, sm90_xmma_gemm_*, gemv*, gemmk1), CUTLASS *gemm*, cuBLAS
    # nvjet (Hopper), AMD Tensile (Cijk_*). FBGEMM names contain "gemm" but are not GEMMs.
    _rule(r"(?i)(?<!fb)gemm|gemv|^nvjet_|^Cijk_", OpClass.GEMM),
    # FBGEMM jagged tensor ops: batched matmuls, row gathers, the rest pointwise.
    _rule(r"jagged\w*bmm", OpClass.GEMM),
    _rule(r"jagged_index_(?:select|add)", OpClass.EMBEDDING),
    _rule(r"jagged|dense_to_jagged|to_dense", OpClass.ELEMENTWISE),
    # FBGEMM quantize and dequantize to FP8/HFP8: per-element conversions.
    _rule(r"(?i)fp8|hfp8|quantize", OpClass.ELEMENTWISE),
    # Embedding lookups and their bookkeeping: FBGEMM table-batched embeddings (TBE),
    # sparse-feature permutes, ATen embedding backward and EmbeddingBag, index_select.
    _rule(
        r"(?i)embedding|permute_\w*(?:lengths|data|indices|embs)|bucketize_sparse"
        r"|bounds_check_indices|linearize_index|offsets_range|recat_copy"
        r"|indexSelect(?:Large|Small)Index"
        r"|krn_partial|compute_grad_weight|sum_and_scatter|compute_num_of_partial_segments",
        OpClass.EMBEDDING,
    ),
    # Optimizer gradient clipping: ATen _foreach_norm and its cleanup step.
    _rule(r"LpNormFunctor|lpnorm_cleanup", OpClass.REDUCTION),
    # Pooling reduces each window (forward) or sums window gradients (backward).
    _rule(r"(?i)max_?pool|avg_?pool|adaptive_?(?:avg|average|max)", OpClass.REDUCTION),
    # Losses: the forward sums over the batch, the backward writes per-row gradients.
    _rule(r"nll_loss\w*forward|ClassNLLCriterion_updateOutput", OpClass.REDUCTION),
    _rule(r"nll_loss\w*backward|ClassNLLCriterion_updateGradInput", OpClass.ELEMENTWISE),
    # ATen TensorIterator reductions, scans (cumsum) and CUB reduce and scan.
    _rule(
        r"\breduce_kernel\b|tensor_kernel_scan|cub::Device(?:Segmented)?(?:Reduce|Scan)"
        r"|\bkernelReduce",
        OpClass.REDUCTION,
        _COMPOSITE_CLASSES,
    ),
    # ATen TensorIterator pointwise kernels (including index, scatter/gather and random
    # number kernels), foreach/optimizer kernels, cat, dropout, upsampling, indexing.
    _rule(
        r"elementwise_kernel|distribution_|multi_tensor_apply_kernel|CatArrayBatchedCopy"
        r"|dropout|(?i:upsample)|indexing_backward_kernel|indexFunc(?:Large|Small)Index"
        r"|searchsorted|triu_tril_kernel",
        OpClass.ELEMENTWISE,
        _COMPOSITE_CLASSES,
    ),
    # Triton (PyTorch Inductor) generated kernels by kind: pointwise, reduction, persistent
    # reduction. Names that carry no kind ("triton__0d1d2d") defer to the CPU op.
    _rule(r"^triton_poi_", OpClass.ELEMENTWISE, _COMPOSITE_CLASSES),
    _rule(r"^triton_(?:red|per)_", OpClass.REDUCTION, _COMPOSITE_CLASSES),
    _rule(r"^triton_", OpClass.OTHER, _ALL_CLASSES),
    # CUTLASS kernels whose template argument names no known family are GEMMs unless the CPU
    # op gives another class, because most CUTLASS kernels are GEMMs.
    _rule(r"\bcutlass\w*::(?:device_)?[Kk]ernel", OpClass.GEMM, _ALL_CLASSES),
)

_CPU_OP_RULES: tuple[tuple[re.Pattern[str], OpClass], ...] = tuple(
    (re.compile(regex), op_class)
    for regex, op_class in (
        # torch.distributed: "nccl:all_reduce", "c10d::allreduce_", record_param_comms.
        (
            r"^(?:nccl|gloo|c10d|_?c10d_functional)[:_]|record_param_comms",
            OpClass.COMMUNICATION,
        ),
        (
            r"scaled_dot_product|flash_attention|efficient_attention|cudnn_attention"
            r"|flex_attention|multi_head_attention|fmha",
            OpClass.ATTENTION,
        ),
        (r"convolution|(?:::|_)conv(?:\d|_)", OpClass.CONVOLUTION),
        (r"(?:batch|layer|group|instance|rms)_norm", OpClass.NORMALIZATION),
        (r"softmax|cross_entropy", OpClass.SOFTMAX),
        (
            r"embedding|SplitLookupFunction|EmbeddingBag|PermutePooledEmbs"
            r"|^fbgemm::(?:permute|block_bucketize|bounds_check|jagged_index)",
            OpClass.EMBEDDING,
        ),
        (
            r"^aten::(?:mm|addmm|_addmm_activation|bmm|baddbmm|addbmm|matmul|linear|addmv|mv"
            r"|dot|vdot|_scaled_mm|_int_mm|einsum|outer|ger)$|(?<!fb)gemm",
            OpClass.GEMM,
        ),
        (
            r"^aten::(?:sum|mean|amax|amin|max|min|argmax|argmin|prod|var|std|var_mean|std_mean"
            r"|norm|linalg_vector_norm|logsumexp|cumsum|cumprod|all|any|count_nonzero"
            r"|nll_loss\w*forward|_foreach_norm|\w*pool\d?d\w*)$",
            OpClass.REDUCTION,
        ),
        (
            r"^aten::(?:add|sub|rsub|mul|div|copy|fill|zero|zeros|ones|full|clone|cat|stack"
            r"|where|_?index\w*|scatter\w*|gather|repeat\w*|arange|_to_copy|to|contiguous"
            r"|_foreach_\w+|_fused_\w+|\w*dropout\w*|masked_fill|clamp\w*|nll_loss\w*backward"
            r"|uniform|normal|bernoulli|random|exponential)_?$"
            r"|^Optimizer\.step",
            OpClass.ELEMENTWISE,
        ),
    )
)


def classify_cpu_op(cpu_op: str | None) -> OpClass | None:
    """Return the op class that a CPU op's name implies, or None when it implies none."""
    if not cpu_op:
        return None
    for pattern, op_class in _CPU_OP_RULES:
        if pattern.search(cpu_op):
            return op_class
    return None


@lru_cache(maxsize=65536)
def classify_kernel(name: str, cpu_op: str | None = None, category: str = "kernel") -> OpClass:
    """Return the op class of a GPU kernel.

    `name` is the kernel name as the trace records it (demangled, with template and
    argument lists). `cpu_op` is the name of the CPU op that launched it, if known.
    `category` is the normalized trace category: "kernel", "memcpy" or "memset".
    Results are cached because a trace repeats the same few hundred names.

    Raises ValueError for any other category.
    """
    if category not in _CATEGORIES:
        raise ValueError(
            f"invalid kernel category {category!r}: expected 'kernel', 'memcpy' or 'memset'"
        )
    if category == "memcpy":
        return OpClass.MEMCPY
    if category == "memset":
        return OpClass.MEMSET
    op_class = classify_cpu_op(cpu_op)
    for rule in _NAME_RULES:
        if rule.pattern.search(name):
            if op_class in rule.yields_to:
                return op_class
            return rule.op_class
    return op_class if op_class is not None else OpClass.OTHER
