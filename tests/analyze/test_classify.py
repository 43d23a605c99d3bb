"""Kernel classification by name and launching CPU op, on a case table and real traces."""

from __future__ import annotations

import os

import pytest

from energaizer.analyze.classify import classify_cpu_op, classify_kernel
from energaizer.analyze.opclass import OpClass
from kernel_names import (
    SHARED_DATA_ENV,
    collect_trace_kernels,
    kernel_time_us,
    kernel_totals,
    other_share,
    shared_data_dir,
    top_other_kernels,
)

GEMM = OpClass.GEMM
CONV = OpClass.CONVOLUTION
ATTN = OpClass.ATTENTION
EW = OpClass.ELEMENTWISE
RED = OpClass.REDUCTION
NORM = OpClass.NORMALIZATION
SOFTMAX = OpClass.SOFTMAX
EMB = OpClass.EMBEDDING
COMM = OpClass.COMMUNICATION
OTHER = OpClass.OTHER

# (test id, kernel name, launching CPU op, expected class). Names are written as Kineto
# records them, with long template argument lists cut where they add nothing.
CASES = [
    # cuBLAS
    ("volta_sgemm", "volta_sgemm_128x64_nn", "aten::mm", GEMM),
    ("volta_sgemm_sliced", "volta_sgemm_32x32_sliced1x4_tn", "aten::addmm", GEMM),
    ("ampere_sgemm", "ampere_sgemm_128x64_nn", None, GEMM),
    (
        "ampere_bf16_gemm",
        "ampere_bf16_s16816gemm_bf16_128x128_ldg8_f2f_stages_64x3_tn",
        "aten::mm",
        GEMM,
    ),
    ("ampere_fp16_gemm", "ampere_fp16_s1688gemm_fp16_128x128_ldg8_f2f_tn", None, GEMM),
    ("turing_fp16_gemm", "turing_fp16_s1688gemm_fp16_256x128_ldg8_f2f_tn", None, GEMM),
    ("volta_h884gemm", "volta_h884gemm_64x128_ldg8_nn", None, GEMM),
    (
        "sm80_xmma_gemm",
        "sm80_xmma_gemm_f16f16_f16f32_f32_tn_n_tilesize128x128x32_stage4_warpsize2x2x1"
        "_tensor16x8x16_kernel",
        None,
        GEMM,
    ),
    (
        "sm90_xmma_gemm",
        "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"
        "_execute_segment_k_off_kernel__5x_cublas",
        "aten::mm",
        GEMM,
    ),
    (
        "gemv2T",
        "void gemv2T_kernel_val<int, int, float, float, float, float, 128, 16, 4, 4, false, "
        "false, cublasGemvParams<cublasGemvTensorStridedBatched<float const>, "
        "cublasGemvTensorStridedBatched<float const>, cublasGemvTensorStridedBatched<float>, "
        "float> >(cublasGemvParams<...>, float, float)",
        "aten::addmm",
        GEMM,
    ),
    (
        "gemvNSP",
        "void gemvNSP_kernel<float, float, float, float, 1, 16, 4, 1024, "
        "cublasGemvParams<cublasGemvTensorStridedBatched<float const>, ...> >(...)",
        "aten::mm",
        GEMM,
    ),
    (
        "gemmk1",
        "void gemmk1_kernel<int, float, 256, 5, false, false, false, false, "
        "cublasGemvTensorStridedBatched<float const>, ...>(...)",
        "aten::mm",
        GEMM,
    ),
    (
        "gemvx",
        "std::enable_if<!(false), void>::type internal::gemvx::kernel<int, int, float, float, "
        "float, float, false, true, true, false, 7, cublasGemvParams<...> >(...)",
        "aten::addmm",
        GEMM,
    ),
    (
        "splitKreduce",
        "void splitKreduce_kernel<float, float, float, float, true, false, false>"
        "(cublasSplitKParams<float>, float const*, float const*, float*, float const*)",
        "aten::mm",
        GEMM,
    ),
    (
        "cublasLt_splitKreduce",
        "void cublasLt::splitKreduce_kernel<32, 16, int, float, float, float, float, true, "
        "true, false>(cublasLt::cublasSplitKParams<float>, float const*, float*)",
        "aten::addmm",
        GEMM,
    ),
    (
        "cublasLt_epilogue",
        "void epilogue::impl::globalKernel<float, float, float, true, true>(int, int, long, "
        "float*, cublasLtEpilogue_t, int, float*, long, void*, long, long, long, float*)",
        "aten::addmm",
        GEMM,
    ),
    (
        "cublas_dot",
        "void dot_kernel<float, 128, 0, cublasDotParams<cublasGemvTensorStridedBatched<float "
        "const>, cublasGemvTensorStridedBatched<float> > >(cublasDotParams<...>)",
        "aten::addmm",
        GEMM,
    ),
    (
        "magma_sgemm",
        "void magma_sgemmEx_kernel<float, float, float, true, false, 6, 4, 6, 3, 4>(int, int, "
        "int, Tensor, int, Tensor, int, Tensor, int, int, int, float const*, float const*)",
        "aten::addmm",
        GEMM,
    ),
    ("nvjet", "nvjet_tst_128x256_64x4_2x1_v_bz_coopB_NNT", "aten::mm", GEMM),
    ("sgemm_under_cudnn_conv", "volta_sgemm_64x64_nn", "aten::cudnn_convolution", GEMM),
    ("amd_tensile", "Cijk_Alik_Bljk_SB_Bias_AS_SAV_UserArgs_MT64x16x32_MI16x16x1", None, GEMM),
    # CUTLASS
    ("cutlass_plain", "cutlass_80_tensorop_s1688gemm_64x64_16x6_nt_align4", None, GEMM),
    (
        "cutlass_kernel_wmma",
        "void cutlass::Kernel<cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_32x32_128x2_tn"
        "_align8>(cutlass_80_wmma_tensorop_bf16_s161616gemm_bf16_32x32_128x2_tn_align8"
        "::Params)",
        "aten::addmm",
        GEMM,
    ),
    (
        "cutlass_kernel2",
        "void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn"
        "_align8>(cutlass_80_tensorop_bf16_s16816gemm_relu_bf16_64x64_64x4_tn_align8::Params)",
        "aten::addmm",
        GEMM,
    ),
    (
        "cutlass_simt",
        "void cutlass::Kernel2<cutlass_80_simt_sgemm_128x32_8x5_nn_align1>"
        "(cutlass_80_simt_sgemm_128x32_8x5_nn_align1::Params)",
        "aten::bmm",
        GEMM,
    ),
    ("cutlass_unknown", "void cutlass::Kernel<FusedOp>(FusedOp::Params)", None, GEMM),
    # cuDNN and other convolutions
    (
        "implicit_convolve",
        "void implicit_convolve_sgemm<float, float, 1024, 6, 7, 3, 3, 5, 1, false, true, true>"
        "(int, int, int, float const*, int, float*, float const*, kernel_conv_params)",
        "aten::cudnn_convolution",
        CONV,
    ),
    (
        "precomputed_convolve",
        "void precomputed_convolve_sgemm<float, 1024, 5, 5, 4, 3, 3, 1, false>(int, int, int)",
        "aten::cudnn_convolution",
        CONV,
    ),
    (
        "explicit_convolve",
        "void explicit_convolve_sgemm<float, int, 1024, 5, 5, 3, 3, 3, 0, false>(int, int)",
        "aten::cudnn_convolution",
        CONV,
    ),
    ("volta_scudnn", "volta_scudnn_128x64_relu_interior_nn_v1", None, CONV),
    ("cudnn_ampere_scudnn", "cudnn_ampere_scudnn_128x64_relu_xregs_large_nn_v1", None, CONV),
    (
        "scudnn_winograd",
        "cudnn_infer_volta_scudnn_winograd_128x128_ldg1_ldg4_relu_tile148t_nt_v1",
        "aten::convolution_backward",
        CONV,
    ),
    (
        "turing_h1688cudnn",
        "turing_h1688cudnn_256x64_sliced1x2_ldg8_relu_exp_small_nhwc_tn_v1",
        "aten::cudnn_convolution",
        CONV,
    ),
    (
        "xmma_fprop",
        "sm80_xmma_fprop_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nchw_tilesize128"
        "x128x16_stage4_warpsize2x2x1_g1_tensor16x8x8_execute_kernel_cudnn_infer",
        "aten::cudnn_convolution",
        CONV,
    ),
    (
        "xmma_dgrad",
        "sm80_xmma_dgrad_implicit_gemm_tf32f32_tf32f32_f32_nhwckrsc_nhwc_tilesize64x128x32"
        "_stage5_warpsize2x2x1_g1_tensor16x8x8_execute_kernel_cudnn_infer",
        "aten::convolution_backward",
        CONV,
    ),
    (
        "xmma_wgrad",
        "sm80_xmma_wgrad_implicit_gemm_indexed_tf32f32_tf32f32_f32_nhwckrsc_nhwc_tilesize64x64"
        "x64_stage4_warpsize2x2x1_g1_tensor16x8x8_execute_kernel_cudnn_train",
        "aten::convolution_backward",
        CONV,
    ),
    (
        "winograd_data",
        "void cudnn::winograd_nonfused::winogradForwardData4x4<float, float>"
        "(cudnn::winograd_nonfused::WinogradDataParams<float, float>)",
        "aten::cudnn_convolution",
        CONV,
    ),
    (
        "dgrad_engine",
        "void cudnn::detail::dgrad_engine<float, 512, 6, 5, 3, 3, 3, false>(int, int, int)",
        "aten::convolution_backward",
        CONV,
    ),
    (
        "wgrad_alg0",
        "void wgrad_alg0_engine<float, 128, 6, 7, 3, 3, 5, false, 512>(int, int, int)",
        "aten::convolution_backward",
        CONV,
    ),
    (
        "fft2d_c2r",
        "void fft2d_c2r_32x32<float, false, false, 0u, false, false>(float*, float2 const*)",
        "aten::cudnn_convolution",
        CONV,
    ),
    (
        "fft2d_r2c",
        "void fft2d_r2c_32x32<float, false, 5u, true>(float2*, float const*, int, int)",
        "aten::cudnn_convolution",
        CONV,
    ),
    (
        "cask_offsets",
        "cask_cudnn::computeOffsetsKernel(cask_cudnn::ComputeOffsetsParams)",
        "aten::cudnn_convolution",
        CONV,
    ),
    (
        "cask_b_offsets",
        "cask_cudnn_infer::computeBOffsetsKernel(cask_cudnn_infer::ComputeBOffsetsParams)",
        "aten::convolution_backward",
        CONV,
    ),
    (
        "cudnn_im2col",
        "void cudnn::cnn::im2col4d_kernel<float, long>(cudnn::cnn::im2col4d_params, "
        "cudnnConvolutionStruct, cudnnTensor4dStruct, float const*, float*)",
        "aten::cudnn_convolution",
        CONV,
    ),
    (
        "cutlass_in_cudnn",
        "void cutlass_cudnn_infer::Kernel<cutlass_tensorop_s1688dgrad_optimized_tf32_64x256"
        "_32x4_nhwc_align4>(cutlass_tensorop_s1688dgrad_optimized_tf32_64x256_32x4_nhwc"
        "_align4::Params)",
        "aten::convolution_backward",
        CONV,
    ),
    (
        "cutlass_in_cudnn_mangled",
        "_ZN19cutlass_cudnn_train6KernelINS_4conv6kernel23ImplicitGemmConvolutionINS1_11thread"
        "block22ImplicitGemmMultistageINS_4gemm9GemmShapeILi128ELi128ELi32EEE",
        "aten::convolution_backward",
        CONV,
    ),
    (
        "aten_depthwise",
        "void at::native::(anonymous namespace)::conv_depthwise2d_forward_kernel<3, float, int>"
        "(at::GenericPackedTensorAccessor<float const, 4ul, at::DefaultPtrTraits, int>)",
        "aten::_conv_depthwise2d",
        CONV,
    ),
    (
        "cudnn_nchw_to_nhwc",
        "void cudnn::ops::nchwToNhwcKernel<float, float, float, false, true, "
        "(cudnnKernelDataType_t)0>(cudnn::ops::nchw2nhwc_params_t<float>, float const*, "
        "float*)",
        "aten::cudnn_convolution",
        EW,
    ),
    (
        "cudnn_nhwc_to_nchw",
        "void nhwcToNchwKernel<float, float, float, true, false, (cudnnKernelDataType_t)0>"
        "(int, int, int, int, float const*, float*, float, float)",
        "aten::cudnn_convolution",
        EW,
    ),
    (
        "cudnn_scale",
        "void cudnn::ops::scalePackedTensor_kernel<float, float>(long, float*, float)",
        "aten::convolution_backward",
        EW,
    ),
    # Batch norm in cuDNN and ATen
    (
        "bn_fw_tr",
        "void cudnn::bn_fw_tr_1C11_kernel_NCHW<float, float, int, 512, true, 1, true>"
        "(cudnnTensorStruct, float const*, cudnnTensorStruct, float*, float const*)",
        "aten::cudnn_batch_norm",
        NORM,
    ),
    (
        "bn_bw",
        "void cudnn::bn_bw_1C11_kernel_new<float, float, float2, 512, true, 1>(float, float)",
        "aten::cudnn_batch_norm_backward",
        NORM,
    ),
    (
        "bn_fw_inf",
        "void cudnn::bn_fw_inf_1C11_kernel_NCHW<float, float, true, 1>(float, float)",
        "aten::cudnn_batch_norm",
        NORM,
    ),
    (
        "bn_collect_stats",
        "void at::native::batch_norm_collect_statistics_kernel<at::native::InvStd, float, "
        "float, float, int>(at::GenericPackedTensorAccessor<float const, 3ul>)",
        "aten::native_batch_norm",
        NORM,
    ),
    # Attention
    (
        "flash_fwd",
        "void flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128, 64, 4, false, false, "
        "cutlass::half_t, Flash_kernel_traits<128, 128, 64, 4, cutlass::half_t> >, false, "
        "true, false, false, true, true, false>(Flash_fwd_params)",
        "aten::_flash_attention_forward",
        ATTN,
    ),
    (
        "pytorch_flash_fwd",
        "void pytorch_flash::flash_fwd_kernel<pytorch_flash::Flash_fwd_kernel_traits<64, "
        "128, 128, 4, false, false, cutlass::bfloat16_t, pytorch_flash::Flash_kernel_traits"
        "<64, 128, 128, 4, cutlass::bfloat16_t> >, false, true, false, false, false, true, "
        "false>"
        "(pytorch_flash::Flash_fwd_params)",
        "aten::_flash_attention_forward",
        ATTN,
    ),
    (
        "flash_bwd",
        "void flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<Flash_bwd_kernel_traits<128, 64, "
        "128, 8, 2, 4, 2, false, false, cutlass::half_t>, true, false, false>"
        "(Flash_bwd_params)",
        "aten::_flash_attention_backward",
        ATTN,
    ),
    (
        "flash_splitkv",
        "void flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4, false, false, "
        "cutlass::half_t>, true, false, false, false, true, false>(Flash_fwd_params)",
        None,
        ATTN,
    ),
    (
        "fmha_cutlassF",
        "fmha_cutlassF_f16_aligned_64x64_rf_sm80(PyTorchMemEffAttention::AttentionKernel"
        "<cutlass::half_t, cutlass::arch::Sm80, true, 64, 64, 64, true, true>::Params)",
        "aten::_efficient_attention_forward",
        ATTN,
    ),
    (
        "fmha_cutlassB",
        "fmha_cutlassB_f16_aligned_64x64_k64_sm80(PyTorchMemEffAttention::AttentionBackward"
        "Kernel<cutlass::arch::Sm80, cutlass::half_t, true, false, true, 64, 64, 64>::Params)",
        "aten::_efficient_attention_backward",
        ATTN,
    ),
    ("cutlass_sm80_fmha", "void cutlass::Kernel<cutlass_sm80_fmha_fwd>(Params)", None, ATTN),
    (
        "xformers_batched",
        "void attention_kernel_batched_impl<AttentionKernel<cutlass::half_t, cutlass::arch::"
        "Sm80, true, 64, 64, true, true, false> >(AttentionKernel<cutlass::half_t>::Params)",
        "xformers::efficient_attention_forward_cutlass",
        ATTN,
    ),
    # Triton (PyTorch Inductor)
    ("triton_poi", "triton_poi_fused_add_cos_sin_0", "triton_poi_fused_add_cos_sin_0", EW),
    ("triton_red", "triton_red_fused_sum_0", None, RED),
    ("triton_per", "triton_per_fused_mean_1", None, RED),
    ("triton_per_softmax", "triton_per_fused__softmax_0", None, SOFTMAX),
    ("triton_red_layer_norm", "triton_red_fused_native_layer_norm_0", None, NORM),
    ("triton_per_rms_norm", "triton_per_fused__to_copy_add_mean_mul_pow_rsqrt_1", None, NORM),
    ("triton_tem_mm", "triton_tem_fused_mm_0", None, GEMM),
    ("triton_tem_addmm", "triton_tem_fused_addmm_relu_2", None, GEMM),
    ("triton_poi_embedding", "triton_poi_fused_embedding_0", None, EMB),
    ("triton_no_kind", "triton__0d1d2d3d", "CompiledFunction", OTHER),
    # NCCL
    ("nccl_allreduce", "ncclKernel_AllReduce_RING_LL_Sum_float(ncclWorkElem)", None, COMM),
    (
        "nccl_sendrecv",
        "ncclKernel_SendRecv_RING_SIMPLE_Sum_int8_t(ncclDevComm*, unsigned long, ncclWork*)",
        "record_param_comms",
        COMM,
    ),
    (
        "nccl_allgather",
        "ncclDevKernel_AllGather_RING_LL(ncclDevComm*, unsigned long, ncclWork*)",
        "nccl:all_gather",
        COMM,
    ),
    ("nccl_generic", "ncclDevKernel_Generic(ncclDevComm*, unsigned long, ncclWork*)", "", COMM),
    (
        "nccl_reduce_scatter",
        "ncclKernel_ReduceScatter_RING_LL_Sum_bf16(ncclDevComm*, unsigned long, ncclWork*)",
        None,
        COMM,
    ),
    (
        "nccl_broadcast",
        "ncclKernel_Broadcast_RING_LL_Sum_int8_t(ncclDevComm*, unsigned long, ncclWork*)",
        "record_param_comms",
        COMM,
    ),
    # FBGEMM
    (
        "tbe_forward",
        "void split_embedding_codegen_forward_unweighted_kernel<float, float, float, long, 5ul>"
        "(at::GenericPackedTensorAccessor<float, 1ul, at::RestrictPtrTraits, long>)",
        "fbgemm::split_embedding_codegen_lookup_rowwise_adagrad_function",
        EMB,
    ),
    (
        "tbe_backward",
        "void split_embedding_backward_codegen_rowwise_adagrad_unweighted_kernel_cta_per_row_1"
        "<float, float, float, 5ul>(at::GenericPackedTensorAccessor<float, 2ul>)",
        "torch::autograd::CppNode<SplitLookupFunction_rowwise_adagrad_Op>",
        EMB,
    ),
    (
        "permute_2D_lengths",
        "void fbgemm_gpu::permute_2D_lengths_kernel<int>(int, int, int const*, int const*, "
        "int*)",
        "fbgemm::permute_2D_sparse_data",
        EMB,
    ),
    (
        "bounds_check",
        "void bounds_check_indices_kernel<long, false>(at::GenericPackedTensorAccessor<long>)",
        "fbgemm::bounds_check_indices",
        EMB,
    ),
    (
        "bucketize_sparse",
        "void fbgemm_gpu::_block_bucketize_sparse_features_cuda_kernel2<false, false, false, "
        "int, int, decltype(nullptr)>(int, int, int const*, int)",
        "fbgemm::block_bucketize_sparse_features",
        EMB,
    ),
    (
        "permute_pooled_embs",
        "void permute_pooled_embs_kernel<float>(float const*, long const*, float*)",
        "fbgemm::permute_pooled_embs_auto_grad",
        EMB,
    ),
    (
        "linearize_index",
        "void linearize_index_kernel<long>(at::GenericPackedTensorAccessor<long, 1ul>)",
        None,
        EMB,
    ),
    (
        "jagged_index_select",
        "void fbgemm_gpu::jagged_index_select_2d_kernel<float, long, long>(float*)",
        "fbgemm::jagged_index_select",
        EMB,
    ),
    (
        "jagged_elementwise",
        "void fbgemm_gpu::jagged_dense_elementwise_dense_output_kernel_<2, 2, float>(...)",
        "fbgemm::jagged_to_padded_dense",
        EW,
    ),
    ("jagged_bmm", "void fbgemm_gpu::jagged_jagged_bmm_kernel<float>(...)", None, GEMM),
    (
        "fp8_quantize",
        "void fbgemm_gpu::(anonymous namespace)::_compute_FP8_quantize_cuda_kernel<float>"
        "(float const*, float const*, int, int, unsigned char*, bool)",
        "fbgemm::FloatToFP8RowwiseQuantized",
        EW,
    ),
    # ATen
    (
        "aten_vectorized",
        "void at::native::vectorized_elementwise_kernel<4, at::native::CUDAFunctor_add<float>, "
        "at::detail::Array<char*, 3> >(int, at::native::CUDAFunctor_add<float>)",
        "aten::add",
        EW,
    ),
    (
        "aten_unrolled",
        "void at::native::unrolled_elementwise_kernel<at::native::direct_copy_kernel_cuda"
        "(at::TensorIteratorBase&)::{lambda()#2}, at::detail::Array<char*, 2> >(int)",
        "aten::copy_",
        EW,
    ),
    (
        "aten_elementwise",
        "void at::native::elementwise_kernel<128, 2, at::native::gpu_kernel_impl<at::native::"
        "BinaryFunctor<float, float, float, at::native::binary_internal::MulFunctor<float> > >"
        "(at::TensorIteratorBase&)::{lambda(int)#1}>(int)",
        "aten::mul",
        EW,
    ),
    (
        "aten_index_put",
        "void at::native::index_elementwise_kernel<128, 4, at::native::gpu_index_kernel<at::"
        "native::index_put_kernel_impl<at::native::OpaqueType<4> > >(int)",
        "aten::_index_put_impl_",
        EW,
    ),
    (
        "aten_reduce",
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::"
        "MeanOps<float, float, float, float>, unsigned int, float, 4> >(...)",
        "aten::mean",
        RED,
    ),
    (
        "adam",
        "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::"
        "(anonymous namespace)::TensorListMetadata<4>, at::native::(anonymous namespace)::"
        "FusedAdamMathFunctor<float, 4>, float>(...)",
        "Optimizer.step#Adam.step",
        EW,
    ),
    (
        "foreach_norm",
        "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<at::native::"
        "(anonymous namespace)::TensorListMetadata<1>, at::native::(anonymous namespace)::"
        "LpNormFunctor<float, 2, float, float>, float*, int>(...)",
        "aten::_foreach_norm",
        RED,
    ),
    (
        "softmax_fwd",
        "void (anonymous namespace)::softmax_warp_forward<float, float, float, 10, false, "
        "false>(float*, float const*, int, int, int, bool const*, int, bool)",
        "aten::_softmax",
        SOFTMAX,
    ),
    (
        "softmax_bwd",
        "void (anonymous namespace)::softmax_warp_backward<float, float, float, 10, true, "
        "false>(float*, float const*, float const*, int, int, int, bool const*)",
        "aten::_log_softmax_backward_data",
        SOFTMAX,
    ),
    (
        "cunn_softmax_fwd",
        "void at::native::(anonymous namespace)::cunn_SoftMaxForward<4, float, float, float, "
        "at::native::(anonymous namespace)::SoftMaxForwardEpilogue>(float*, float const*, int)",
        "aten::_softmax",
        SOFTMAX,
    ),
    (
        "cunn_softmax_bwd",
        "void at::native::(anonymous namespace)::cunn_SoftMaxBackward<4, float, float, float, "
        "at::native::(anonymous namespace)::SoftMaxBackwardEpilogue>(float*, float const*)",
        "aten::_softmax_backward_data",
        SOFTMAX,
    ),
    (
        "layer_norm",
        "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>"
        "(int, float, float const*, float const*, float const*, float*, float*, float*)",
        "aten::native_layer_norm",
        NORM,
    ),
    (
        "layer_norm_grad",
        "void at::native::(anonymous namespace)::layer_norm_grad_input_kernel<float, float>"
        "(float const*, float const*, float const*, float const*, float const*, float*, int)",
        "aten::native_layer_norm_backward",
        NORM,
    ),
    (
        "gamma_beta_backward",
        "void at::native::(anonymous namespace)::GammaBetaBackwardCUDAKernel<float, float>"
        "(long, long, float const*, float const*, float const*, float const*, float*, float*)",
        "aten::native_layer_norm_backward",
        NORM,
    ),
    (
        "rowwise_moments",
        "void at::native::(anonymous namespace)::RowwiseMomentsCUDAKernel<float, float>"
        "(long, float, float const*, float*, float*)",
        "aten::native_group_norm",
        NORM,
    ),
    (
        "fused_params",
        "void at::native::(anonymous namespace)::ComputeFusedParamsCUDAKernel<float>(long, "
        "long, long, float const*, float const*, float const*, float const*, float*, float*)",
        "aten::native_group_norm",
        NORM,
    ),
    (
        "index_select_large",
        "void at::native::(anonymous namespace)::indexSelectLargeIndex<c10::BFloat16, long, "
        "unsigned int, 2, 2, -2, true>(at::cuda::detail::TensorInfo<c10::BFloat16, unsigned "
        "int>)",
        "aten::index_select",
        EMB,
    ),
    (
        "index_select_small",
        "void at::native::(anonymous namespace)::indexSelectSmallIndex<float, long, unsigned "
        "int, 2, 2, -2>(at::cuda::detail::TensorInfo<float, unsigned int>)",
        "aten::index_select",
        EMB,
    ),
    (
        "embedding_backward",
        "void at::native::(anonymous namespace)::embedding_backward_feature_kernel<float, "
        "float, long>(long const*, float const*, float*, int, long, int)",
        "aten::embedding_dense_backward",
        EMB,
    ),
    (
        "cat_copy",
        "void at::native::(anonymous namespace)::CatArrayBatchedCopy<float, unsigned int, 2, "
        "128, 1>(float*, at::native::(anonymous namespace)::CatArrInputTensorMetadata<float>)",
        "aten::cat",
        EW,
    ),
    (
        "max_pool_fwd",
        "void at::native::(anonymous namespace)::max_pool_forward_nchw<float, float>(int, "
        "float const*, long, long, long, int, int, int, int, int, int, int, float*, long*)",
        "aten::max_pool2d_with_indices",
        RED,
    ),
    (
        "max_pool_bwd",
        "void at::native::(anonymous namespace)::max_pool_backward_nchw<float, float>(float "
        "const*, long const*, int, long, long, long, int, int, int, int, float*)",
        "aten::max_pool2d_with_indices_backward",
        RED,
    ),
    (
        "adaptive_avg_pool",
        "void at::native::(anonymous namespace)::adaptive_average_pool<float>(float const*, "
        "float*, int, int, int, int, long, long, long)",
        "aten::_adaptive_avg_pool2d",
        RED,
    ),
    (
        "avg_pool",
        "void at::native::(anonymous namespace)::avg_pool2d_out_cuda_frame<float, float>(int)",
        "aten::avg_pool2d",
        RED,
    ),
    (
        "upsample",
        "void at::native::(anonymous namespace)::upsample_bilinear2d_out_frame<float, float>"
        "(int, float, float, bool, at::GenericPackedTensorAccessor<float const, 4ul>)",
        "aten::upsample_bilinear2d",
        EW,
    ),
    (
        "scatter_gather",
        "void at::native::_scatter_gather_elementwise_kernel<128, 4, at::native::_cuda_scatter"
        "_gather_internal_kernel<true, float>::operator()<at::native::ReduceAdd>(...)>(int)",
        "aten::scatter_add_",
        EW,
    ),
    (
        "random_uniform",
        "void at::native::(anonymous namespace)::distribution_elementwise_grid_stride_kernel"
        "<float, 4, at::native::templates::cuda::uniform_and_transform<float, float, 4ul> >"
        "(int)",
        "aten::uniform_",
        EW,
    ),
    (
        "fused_dropout",
        "void at::native::(anonymous namespace)::fused_dropout_kernel_vec<float, float, "
        "unsigned int, 1, 4, bool>(at::cuda::detail::TensorInfo<float, unsigned int>)",
        "aten::native_dropout",
        EW,
    ),
    (
        "nll_loss_fwd",
        "void at::native::(anonymous namespace)::nll_loss_forward_reduce_cuda_kernel_2d<float, "
        "float, long>(float*, float*, float*, long*, float*, bool, long, long, long, long)",
        "aten::nll_loss_forward",
        RED,
    ),
    (
        "nll_loss_bwd",
        "void at::native::(anonymous namespace)::nll_loss_backward_reduce_cuda_kernel_2d"
        "<float, long>(float*, float*, long*, float*, float*, bool, int, int, long, long)",
        "aten::nll_loss_backward",
        EW,
    ),
    (
        "searchsorted",
        "void at::native::(anonymous namespace)::searchsorted_cuda_kernel<float, long>(long*, "
        "float const*, float const*, long const*, long, long, long, bool, bool)",
        "aten::bucketize",
        EW,
    ),
    # CUB reduce and scan, sorting
    (
        "cub_reduce",
        "void at_cuda_detail::cub::DeviceReduceKernel<at_cuda_detail::cub::DeviceReducePolicy"
        "<float, float, int, at_cuda_detail::cub::Sum>::Policy600, float*, float*, int>(...)",
        "aten::sum",
        RED,
    ),
    (
        "cub_scan",
        "void at_cuda_detail::cub::DeviceScanKernel<at_cuda_detail::cub::AgentScanPolicy<128, "
        "15, long> >(long*, long*, int)",
        "aten::cumsum",
        RED,
    ),
    (
        "radix_sort_inplace",
        "void at::native::radixSortKVInPlace<-2, -1, 32, 4, float, long>(at::cuda::detail::"
        "TensorInfo<float, unsigned int>, unsigned int, unsigned int, unsigned int)",
        "aten::sort",
        OTHER,
    ),
    (
        "cub_radix_sort_alone",
        "void cub::DeviceRadixSortOnesweepKernel<cub::DeviceRadixSortPolicy<long, int, int>::"
        "Policy800, false, long, int, int, int>(int*, int*, int*, int const*, long*)",
        None,
        OTHER,
    ),
    # Copies and fills recorded under the kernel category
    ("memcpy_name", "Memcpy HtoD (Pinned -> Device)", "aten::copy_", OpClass.MEMCPY),
    ("memset_name", "Memset (Device)", None, OpClass.MEMSET),
    # Unknown names
    ("unknown_name", "my_custom_kernel_v2", None, OTHER),
    ("empty_name", "", None, OTHER),
    ("plain_kernel", "Kernel", "op1", OTHER),
]


@pytest.mark.parametrize(
    ("name", "cpu_op", "expected"),
    [
        pytest.param(name, cpu_op, expected, id=case_id)
        for case_id, name, cpu_op, expected in CASES
    ],
)
def test_classify_kernel_cases(name, cpu_op, expected):
    assert classify_kernel(name, cpu_op) is expected


def test_case_table_covers_every_class():
    covered = {expected for _, _, _, expected in CASES}
    assert covered == set(OpClass)


# The CPU op decides when the name is a generic building block or carries no class.
CPU_OP_TIE_BREAKS = [
    (
        "reduce_under_layer_norm",
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, "
        "at::native::WelfordOps<float, float, int, float> > >(...)",
        "aten::native_layer_norm",
        NORM,
    ),
    (
        "reduce_under_sum",
        "void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, ...> >(...)",
        "aten::sum",
        RED,
    ),
    (
        "elementwise_under_batch_norm",
        "void at::native::elementwise_kernel<128, 4, at::native::batch_norm_apply(...)>(int)",
        "aten::native_batch_norm",
        NORM,
    ),
    (
        "elementwise_under_softmax",
        "void at::native::vectorized_elementwise_kernel<4, at::native::FillFunctor<float> >"
        "(int)",
        "aten::_masked_softmax",
        SOFTMAX,
    ),
    (
        "elementwise_copy_under_addmm",
        "void at::native::unrolled_elementwise_kernel<at::native::copy_device_to_device(...)>",
        "aten::addmm",
        EW,
    ),
    ("triton_red_under_norm", "triton_red_fused_0", "aten::native_layer_norm", NORM),
    ("triton_no_kind_under_mm", "triton__0d1d2d3d", "aten::mm", GEMM),
    ("kernel_under_mm", "Kernel", "aten::mm", GEMM),
    ("kernel_under_conv", "Kernel", "aten::convolution", CONV),
    ("kernel_under_sdpa", "Kernel", "aten::_scaled_dot_product_flash_attention", ATTN),
    ("kernel_under_embedding", "Kernel", "aten::embedding", EMB),
    ("kernel_under_nccl", "Kernel", "nccl:all_reduce", COMM),
    ("kernel_under_record_param_comms", "Kernel", "record_param_comms", COMM),
    ("kernel_under_cross_entropy", "Kernel", "aten::cross_entropy_loss", SOFTMAX),
    ("kernel_without_op", "Kernel", None, OTHER),
    ("cutlass_unknown_under_conv", "void cutlass::Kernel<Op>(Params)", "aten::conv2d", CONV),
    (
        "cub_sort_under_tbe_backward",
        "void cub::DeviceRadixSortOnesweepKernel<cub::DeviceRadixSortPolicy<long, int, int>::"
        "Policy800, false, long, int, int, int>(int*, int*, int*, int const*, long*)",
        "torch::autograd::CppNode<SplitLookupFunction_rowwise_adagrad_Op>",
        EMB,
    ),
    (
        "cub_sort_under_index_put",
        "void at_cuda_detail::cub::DeviceRadixSortSingleTileKernel<at_cuda_detail::cub::"
        "DeviceRadixSortPolicy<long, long, int>::Policy800, false, long, long, int>(...)",
        "aten::_index_put_impl_",
        EW,
    ),
    (
        "cub_scan_under_sparse_permute",
        "void cub::DeviceScanKernel<cub::DeviceScanPolicy<int>::Policy600, int*, int*>(...)",
        "fbgemm::permute_2D_sparse_data",
        EMB,
    ),
    ("unknown_under_embedding_bag", "my_custom_kernel_v2", "aten::_embedding_bag", EMB),
    ("flash_under_mm_keeps_name", "flash_fwd_kernel<Traits>", "aten::mm", ATTN),
    ("gemm_under_norm_keeps_name", "volta_sgemm_128x64_nn", "aten::native_layer_norm", GEMM),
]


@pytest.mark.parametrize(
    ("name", "cpu_op", "expected"),
    [
        pytest.param(name, cpu_op, expected, id=case_id)
        for case_id, name, cpu_op, expected in CPU_OP_TIE_BREAKS
    ],
)
def test_cpu_op_tie_breaks(name, cpu_op, expected):
    assert classify_kernel(name, cpu_op) is expected


@pytest.mark.parametrize(
    ("category", "expected"),
    [("memcpy", OpClass.MEMCPY), ("memset", OpClass.MEMSET)],
)
@pytest.mark.parametrize(
    "name", ["Memcpy DtoD (Device -> Device)", "Memset (Device)", "volta_sgemm_128x64_nn"]
)
def test_copy_categories_decide_class(category, expected, name):
    assert classify_kernel(name, "aten::copy_", category) is expected


@pytest.mark.parametrize("category", ["Kernel", "gpu_memcpy", "cuda_runtime", ""])
def test_invalid_category_raises(category):
    with pytest.raises(ValueError, match="invalid kernel category"):
        classify_kernel("volta_sgemm_128x64_nn", None, category)


@pytest.mark.parametrize(
    ("cpu_op", "expected"),
    [
        ("aten::mm", GEMM),
        ("aten::addmm", GEMM),
        ("aten::bmm", GEMM),
        ("aten::linear", GEMM),
        ("aten::convolution", CONV),
        ("aten::cudnn_convolution", CONV),
        ("aten::_scaled_dot_product_flash_attention", ATTN),
        ("aten::native_layer_norm", NORM),
        ("aten::embedding", EMB),
        ("aten::_softmax", SOFTMAX),
        ("aten::sum", RED),
        ("nccl:all_reduce", COMM),
        ("record_param_comms", COMM),
        ("c10d::allreduce_", COMM),
        ("fbgemm::permute_2D_sparse_data", EMB),
        ("fbgemm::FloatToFP8RowwiseQuantized", None),
        ("aten::_convert_indices_from_coo_to_csr", None),
        ("aten::broadcast_tensors", None),
        ("aten::sort", None),
        ("CompiledFunction", None),
        (None, None),
        ("", None),
    ],
)
def test_classify_cpu_op(cpu_op, expected):
    assert classify_cpu_op(cpu_op) is expected


def test_classify_kernel_caches_repeats():
    name = "volta_sgemm_64x32_sliced1x4_nt"
    classify_kernel(name, "aten::mm", "kernel")
    hits_before = classify_kernel.cache_info().hits
    classify_kernel(name, "aten::mm", "kernel")
    assert classify_kernel.cache_info().hits == hits_before + 1


def _event(category, name, ts, dur, *, pid=1, tid=1, **args):
    return {
        "ph": "X",
        "cat": category,
        "name": name,
        "pid": pid,
        "tid": tid,
        "ts": ts,
        "dur": dur,
        "args": args,
    }


def _cpu_op(name, ts, dur, external_id):
    return _event("cpu_op", name, ts, dur, **{"External id": external_id})


def _launch(ts, correlation, external_id):
    args = {"correlation": correlation, "External id": external_id}
    return _event("cuda_runtime", "cudaLaunchKernel", ts, 5.0, **args)


def _gpu_event(category, name, ts, dur, correlation):
    return _event(category, name, ts, dur, pid=0, tid=7, correlation=correlation)


# An outer and an inner op share the External id and the launching thread, so the link
# must pick the inner one. The second launch carries an External id that matches no op,
# as in traces that copy the correlation id there, so the link falls back to time.
LINK_TRACE = {
    "traceEvents": [
        _cpu_op("aten::linear", 0.0, 100.0, external_id=7),
        _cpu_op("aten::addmm", 10.0, 50.0, external_id=7),
        _launch(20.0, correlation=101, external_id=7),
        _gpu_event("kernel", "volta_sgemm_128x64_nn", 30.0, 40.0, correlation=101),
        _cpu_op("aten::add", 200.0, 20.0, external_id=8),
        _launch(205.0, correlation=102, external_id=102),
        _gpu_event("kernel", "add_kernel", 230.0, 4.0, correlation=102),
        _gpu_event("gpu_memset", "Memset (Device)", 240.0, 1.0, correlation=103),
    ]
}


def test_kernel_totals_links_innermost_op():
    totals = {total.name: total for total in kernel_totals(LINK_TRACE)}
    assert totals["volta_sgemm_128x64_nn"].cpu_op == "aten::addmm"
    assert totals["volta_sgemm_128x64_nn"].total_us == 40.0


def test_kernel_totals_falls_back_to_time():
    totals = {total.name: total for total in kernel_totals(LINK_TRACE)}
    assert totals["add_kernel"].cpu_op == "aten::add"


def test_kernel_totals_normalizes_categories():
    totals = {total.name: total for total in kernel_totals(LINK_TRACE)}
    assert totals["Memset (Device)"].category == "memset"
    assert totals["Memset (Device)"].cpu_op is None


# A trace with less kernel time than this gives no meaningful share: one CUDA-graph kernel
# recorded with a few nanoseconds, for example.
MIN_KERNEL_TIME_US = 1.0
MAX_OTHER_SHARE = 0.02


@pytest.fixture(scope="module")
def shared_traces():
    traces_dir = shared_data_dir() / "traces"
    if not traces_dir.is_dir():
        message = (
            f"shared traces not found at {traces_dir}; set {SHARED_DATA_ENV} to the folder "
            "that contains traces/"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return collect_trace_kernels(traces_dir)


@pytest.mark.shared_data
def test_shared_traces_other_share_below_limit(shared_traces):
    checked = []
    over_limit = {}
    for trace in shared_traces:
        if not trace.is_nvidia or kernel_time_us(trace.kernels) < MIN_KERNEL_TIME_US:
            continue
        checked.append(trace.label)
        share = other_share(trace.kernels)
        if share >= MAX_OTHER_SHARE:
            top_kernels = top_other_kernels(trace.kernels)
            top = [(k.name[:80], k.cpu_op, k.total_us) for k in top_kernels]
            over_limit[trace.label] = (round(share, 4), top)
    assert checked, "no NVIDIA trace with kernel time was found"
    assert not over_limit, f"`other` share at or above {MAX_OTHER_SHARE:.0%}: {over_limit}"
