"""Tile configurations read from GEMM, convolution and attention kernel names."""

from __future__ import annotations

import dataclasses

import pytest

from energaizer.analyze.tiles import TileConfig, parse_tile_config

# (test id, kernel name, expected configuration)
CASES = [
    ("volta_sgemm", "volta_sgemm_128x64_nn", TileConfig(block_m=128, block_n=64)),
    (
        "volta_sgemm_sliced",
        "volta_sgemm_32x32_sliced1x4_tn",
        TileConfig(block_m=32, block_n=32),
    ),
    ("volta_h884gemm", "volta_h884gemm_64x128_ldg8_nn", TileConfig(block_m=64, block_n=128)),
    (
        "cutlass_plain",
        "cutlass_80_tensorop_s1688gemm_64x64_16x6_nt_align4",
        TileConfig(block_m=64, block_n=64, block_k=16, stages=6),
    ),
    (
        "cublas_stages",
        "ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_64x3_tn",
        TileConfig(block_m=128, block_n=128, block_k=64, stages=3),
    ),
    (
        "sm80_xmma_gemm",
        "sm80_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x32_stage4_warpsize2x2x1"
        "_tensor16x8x16_kernel",
        TileConfig(block_m=128, block_n=128, block_k=32, stages=4, warps=(2, 2, 1)),
    ),
    (
        "sm90_xmma_gemm",
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"
        "_execute_segment_k_off_kernel__5x_cublas",
        TileConfig(block_m=128, block_n=128, block_k=64),
    ),
    (
        "xmma_fprop",
        "sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128"
        "x128x16_stage4_warpsize2x2x1_g1_tensor16x8x8_execute_kernel_cudnn_infer",
        TileConfig(block_m=128, block_n=128, block_k=16, stages=4, warps=(2, 2, 1)),
    ),
    (
        "xmma_wgrad_4x2",
        "sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize256"
        "x64x32_stage3_warpsize4x2x1_g1_tensor16x8x8_execute_kernel_cudnn_infer",
        TileConfig(block_m=256, block_n=64, block_k=32, stages=3, warps=(4, 2, 1)),
    ),
    (
        "volta_scudnn",
        "volta_scudnn_128x64_relu_interior_nn_v1",
        TileConfig(block_m=128, block_n=64),
    ),
    (
        "scudnn_winograd",
        "cudnn_infer_volta_scudnn_winograd_128x128_ldg1_ldg4_relu_tile148t_nt_v1",
        TileConfig(block_m=128, block_n=128),
    ),
    (
        "flash_fwd",
        "void flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, "
        "cutlass::half_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::half_t> >, false, "
        "true, false, false, true, true, false>(Flash_fwd_params)",
        TileConfig(block_m=128, block_n=64, block_k=128, warps=(4,)),
    ),
    (
        "pytorch_flash_fwd",
        "void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<64, "
        "128, 128, 4, false, false, cutlass::bfloat16_t> >(pytorch_flash::Flash_fwd_params)",
        TileConfig(block_m=128, block_n=128, block_k=64, warps=(4,)),
    ),
    (
        "flash_bwd",
        "void flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<Flash_bwd_kernel_traits<128, 64, "
        "128, 8, 2, 4, 2, false, false, cutlass::half_t>, true>(Flash_bwd_params)",
        TileConfig(block_m=64, block_n=128, block_k=128, warps=(8,)),
    ),
    (
        "cutlass_kernel2",
        "void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn"
        "_align8>(cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn_align8::Params)",
        TileConfig(block_m=64, block_n=64, block_k=64, stages=4),
    ),
    (
        "cutlass_wmma",
        "void cutlass::Kernel<cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_32x32_128x2_tn"
        "_align8>(cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_32x32_128x2_tn_align8)",
        TileConfig(block_m=32, block_n=32, block_k=128, stages=2),
    ),
    (
        "cutlass_simt",
        "void cutlass::Kernel2<cutlass_80_simt_sgemm_128x32_8x5_nn_align1>(Params)",
        TileConfig(block_m=128, block_n=32, block_k=8, stages=5),
    ),
    (
        "cutlass_in_cudnn",
        "void cutlass_cudnn_infer::Kernel<cutlass_tensorop_s1688dgrad_optimized_tf32_64x256"
        "_32x4_nhwc_align4>(cutlass_tensorop_s1688dgrad_optimized_tf32_64x256_32x4_nhwc"
        "_align4::Params)",
        TileConfig(block_m=64, block_n=256, block_k=32, stages=4),
    ),
    (
        "cutlass_mangled_gemm_shape",
        "_ZN19cutlass_cudnn_train6KernelINS_4conv6kernel23ImplicitGemmConvolutionINS1_11thread"
        "block22ImplicitGemmMultistageINS_4gemm9GemmShapeILi64ELi128ELi32EEENS4_9GemmShapeILi32"
        "ELi64ELi32EEE",
        TileConfig(block_m=64, block_n=128, block_k=32),
    ),
    (
        "cutlass_demangled_gemm_shape",
        "void cutlass::Kernel<cutlass::gemm::kernel::Gemm<cutlass::gemm::threadblock::"
        "MmaMultistage<cutlass::gemm::GemmShape<128, 256, 32>, cutlass::gemm::GemmShape<64, "
        "64, 32> > > >(Params)",
        TileConfig(block_m=128, block_n=256, block_k=32),
    ),
    (
        "fmha_cutlassF",
        "fmha_cutlassF_f16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel"
        "<cutlass::half_t, cutlass::arch::Sm80, true, 64, 64, 64, true, true>::Params)",
        TileConfig(block_m=64, block_n=64),
    ),
]


@pytest.mark.parametrize(
    ("name", "expected"),
    [pytest.param(name, expected, id=case_id) for case_id, name, expected in CASES],
)
def test_parse_tile_config_cases(name, expected):
    assert parse_tile_config(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Kernel",
        "my_custom_kernel_v2",
        "ncclKernel_AllReduce_RING_LL_Sum_float(ncclWorkElem)",
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, "
        "at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<float>)",
        "void gemv2T_kernel_val<int, int, float, float, float, float, 128, 16, 4, 4, false>()",
        "void splitKreduce_kernel<32, 16, int, float>(cublasSplitKParams<float>)",
        "void cudnn::winograd_nonfused::winogradForwardData4x4<float, float>(Params)",
        "void fbgemm_gpu::permute_2D_lengths_kernel<int>(int, int, int const*, int*)",
        "triton_tem_fused_mm_0",
        "nvjet_tst_128x256_64x4_2x1_v_bz_coopB_NNT",
    ],
)
def test_names_without_tile_give_none(name):
    assert parse_tile_config(name) is None


@pytest.mark.parametrize(
    "name",
    [
        "gemm_",
        "gemm_x",
        "gemm_128x",
        "gemm_999999999999999999999999x1_",
        "Flash_fwd_kernel_traits<",
        "Flash_fwd_kernel_traits<128, 128",
        "tilesize128x",
        "GemmShape<1, 2>",
        "\x00gemm_\ufffd",
        "_" * 10_000,
    ],
)
def test_odd_names_do_not_raise(name):
    config = parse_tile_config(name)
    assert config is None or isinstance(config, TileConfig)


@pytest.mark.parametrize("value", [None, 42, b"volta_sgemm_128x64_nn"])
def test_non_string_input_gives_none(value):
    assert parse_tile_config(value) is None


def test_tile_config_defaults():
    config = parse_tile_config("volta_sgemm_128x64_nn")
    assert config.block_k is None
    assert config.stages is None
    assert config.warps is None
    assert config.split_k is None
    assert config.source == "kernel name"


def test_tile_config_is_frozen():
    config = TileConfig(block_m=64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.block_m = 128
