//! Concatenation operations for FlexTensor.

use alloc::vec::Vec;
use burn_backend::{DType, Element};
use burn_std::{Bytes, Shape, bf16, f16};
use core::mem::MaybeUninit;

use crate::{FlexTensor, Layout};

/// Outputs at least this large are concatenated in parallel.
#[cfg(feature = "rayon")]
const PARALLEL_ELEMENTS: usize = 1 << 16;

/// Concatenate tensors along the given dimension.
pub fn cat(tensors: Vec<FlexTensor>, dim: usize) -> FlexTensor {
    assert!(!tensors.is_empty(), "cat: cannot concatenate empty list");
    if tensors.len() == 1 {
        return tensors.into_iter().next().unwrap();
    }

    let dtype = tensors[0].dtype();
    match dtype {
        DType::F32 => cat_impl::<f32>(tensors, dim),
        DType::F64 => cat_impl::<f64>(tensors, dim),
        DType::F16 => cat_impl::<f16>(tensors, dim),
        DType::BF16 => cat_impl::<bf16>(tensors, dim),
        DType::I64 => cat_impl::<i64>(tensors, dim),
        DType::I32 => cat_impl::<i32>(tensors, dim),
        DType::I16 => cat_impl::<i16>(tensors, dim),
        DType::I8 => cat_impl::<i8>(tensors, dim),
        DType::U64 => cat_impl::<u64>(tensors, dim),
        DType::U32 => cat_impl::<u32>(tensors, dim),
        DType::U16 => cat_impl::<u16>(tensors, dim),
        DType::U8 | DType::Bool(_) => cat_impl::<u8>(tensors, dim),
        _ => panic!("cat: unsupported dtype {:?}", dtype),
    }
}

fn cat_impl<E: Element + bytemuck::Pod>(tensors: Vec<FlexTensor>, dim: usize) -> FlexTensor {
    let dtype = tensors[0].dtype();
    let first_shape = tensors[0].layout().shape();
    let ndims = first_shape.num_dims();

    assert!(
        dim < ndims,
        "cat: dim {} out of bounds for {} dimensions",
        dim,
        ndims
    );

    // Compute output shape: sum along cat dim, others must match
    let mut out_dims = first_shape.to_vec();
    out_dims[dim] = 0;
    for t in &tensors {
        assert_eq!(
            t.dtype(),
            dtype,
            "cat: dtype mismatch: expected {:?}, got {:?}",
            dtype,
            t.dtype()
        );
        let s = t.layout().shape();
        assert_eq!(s.num_dims(), ndims, "cat: dimension count mismatch");
        for (d, out_d) in out_dims.iter_mut().enumerate() {
            if d == dim {
                *out_d += s[d];
            } else {
                assert_eq!(
                    s[d], first_shape[d],
                    "cat: shape mismatch at dim {d}: expected {}, got {}",
                    first_shape[d], s[d]
                );
            }
        }
    }

    let out_shape = Shape::from(out_dims.clone());
    let total_elements: usize = out_shape.num_elements();

    if total_elements == 0 {
        let bytes = Bytes::from_elems::<E>(Vec::new());
        return FlexTensor::new(bytes, Layout::contiguous(out_shape), dtype);
    }

    let mut output: Vec<E> = Vec::with_capacity(total_elements);

    // Fast path: dim 0, all contiguous
    if dim == 0
        && tensors
            .iter()
            .all(|t| t.layout().contiguous_offsets().is_some())
    {
        for t in &tensors {
            let (start, end) = t.layout().contiguous_offsets().unwrap();
            let data: &[E] = t.storage();
            output.extend_from_slice(&data[start..end]);
        }
    } else {
        // General path: iterate over outer/inner chunks
        // (outer indices: the dims before `dim`; inner_size = product of dims after `dim`)
        let inner_size: usize = out_dims[dim + 1..].iter().product();

        // Make all tensors contiguous for simple indexing
        let contiguous: Vec<FlexTensor> = tensors.into_iter().map(|t| t.to_contiguous()).collect();

        // Each outer index's output run is the inputs' runs one after another; the runs are
        // written once, in parallel for large outputs (added for clrtrain; see
        // vendor/README.md): an inception block's concatenation is megabytes.
        let run = out_dims[dim] * inner_size;
        let fill = |(outer, out): (usize, &mut [MaybeUninit<E>])| {
            let mut at = 0;
            for t in &contiguous {
                let data: &[E] = t.storage();
                // Each tensor's chunk for this outer index:
                // offset = t_start + outer * t_dim_size * inner_size
                let chunk_len = t.layout().shape()[dim] * inner_size;
                let chunk_start = t.layout().start_offset() + outer * chunk_len;
                let src = &data[chunk_start..chunk_start + chunk_len];
                for (o, &v) in out[at..at + chunk_len].iter_mut().zip(src) {
                    o.write(v);
                }
                at += chunk_len;
            }
        };
        let spare = &mut output.spare_capacity_mut()[..total_elements];
        #[cfg(feature = "rayon")]
        if total_elements >= PARALLEL_ELEMENTS {
            use rayon::prelude::*;
            spare.par_chunks_mut(run).enumerate().for_each(fill);
        } else {
            spare.chunks_mut(run).enumerate().for_each(fill);
        }
        #[cfg(not(feature = "rayon"))]
        spare.chunks_mut(run).enumerate().for_each(fill);
        // SAFETY: `run > 0` (the output has elements), so the runs cover all `total_elements`
        // slots, and each run's inputs' chunks add up to `run` elements, every one written.
        unsafe { output.set_len(total_elements) };
    }

    let bytes = Bytes::from_elems(output);
    FlexTensor::new(bytes, Layout::contiguous(out_shape), dtype)
}
