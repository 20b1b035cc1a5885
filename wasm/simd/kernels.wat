;; mote's WebAssembly SIMD kernels. Built by build.sh:
;;   wat2wasm --enable-simd wasm/simd/kernels.wat -o wasm/simd/kernels.wasm
;; The module owns no memory: it imports the Go module's linear memory (the
;; host wires it up; see wasm/simd/README.md) and every pointer is an address
;; in it. Each kernel is bit-identical to its plain-Go twin in core/kernels.go:
;; integer sums are exact in any order, and every float sum keeps the Go
;; kernel's order (lanes hold independent rows, never partial sums of one).
(module
  (import "env" "memory" (memory 0))

  ;; out[r] = sum_j w[r*stride+j] * x[j] for r in [0, rows), j in [0, n),
  ;; summed left to right in f32 per row (llama2.c's matmul order). Four rows
  ;; run in the four lanes: a 4x4 block of W is transposed so that lane k
  ;; adds w[r+k][j] * x[j] in sequence.
  (func $matvec_f32 (export "matvec_f32")
    (param $out i32) (param $w i32) (param $stride i32) (param $x i32) (param $n i32) (param $rows i32)
    (local $r i32) (local $j i32) (local $acc v128) (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32)
    (local $a v128) (local $b v128) (local $c v128) (local $d v128) (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local $xv v128) (local $rowb i32) (local $s f32)
    (local.set $rowb (i32.shl (local.get $stride) (i32.const 2)))
    (block $rows_done
      (loop $quad
        (br_if $rows_done (i32.gt_s (i32.add (local.get $r) (i32.const 4)) (local.get $rows)))
        (local.set $p0 (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $rowb))))
        (local.set $p1 (i32.add (local.get $p0) (local.get $rowb)))
        (local.set $p2 (i32.add (local.get $p1) (local.get $rowb)))
        (local.set $p3 (i32.add (local.get $p2) (local.get $rowb)))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $j (i32.const 0))
        (block $jdone
          (loop $jl
            (br_if $jdone (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
            (local.set $a (v128.load (i32.add (local.get $p0) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $b (v128.load (i32.add (local.get $p1) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $c (v128.load (i32.add (local.get $p2) (i32.shl (local.get $j) (i32.const 2)))))
            (local.set $d (v128.load (i32.add (local.get $p3) (i32.shl (local.get $j) (i32.const 2)))))
            ;; t0 = a0 b0 a1 b1, t1 = c0 d0 c1 d1, t2 = a2 b2 a3 b3, t3 = c2 d2 c3 d3
            (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a) (local.get $b)))
            (local.set $t1 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c) (local.get $d)))
            (local.set $t2 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a) (local.get $b)))
            (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c) (local.get $d)))
            (local.set $xv (v128.load (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2)))))
            ;; column 0 = a0 b0 c0 d0 ...
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t1))
              (i8x16.shuffle 0 1 2 3 0 1 2 3 0 1 2 3 0 1 2 3 (local.get $xv) (local.get $xv)))))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t1))
              (i8x16.shuffle 4 5 6 7 4 5 6 7 4 5 6 7 4 5 6 7 (local.get $xv) (local.get $xv)))))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul
              (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t2) (local.get $t3))
              (i8x16.shuffle 8 9 10 11 8 9 10 11 8 9 10 11 8 9 10 11 (local.get $xv) (local.get $xv)))))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul
              (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t2) (local.get $t3))
              (i8x16.shuffle 12 13 14 15 12 13 14 15 12 13 14 15 12 13 14 15 (local.get $xv) (local.get $xv)))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $jl)))
        ;; tail columns, one at a time, still four rows per step
        (block $tdone
          (loop $tl
            (br_if $tdone (i32.ge_s (local.get $j) (local.get $n)))
            (local.set $a (f32x4.splat (f32.load (i32.add (local.get $p0) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $a (f32x4.replace_lane 1 (local.get $a) (f32.load (i32.add (local.get $p1) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $a (f32x4.replace_lane 2 (local.get $a) (f32.load (i32.add (local.get $p2) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $a (f32x4.replace_lane 3 (local.get $a) (f32.load (i32.add (local.get $p3) (i32.shl (local.get $j) (i32.const 2))))))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $a)
              (f32x4.splat (f32.load (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $tl)))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))) (local.get $acc))
        (local.set $r (i32.add (local.get $r) (i32.const 4)))
        (br $quad)))
    ;; leftover rows, one at a time
    (block $done
      (loop $rl
        (br_if $done (i32.ge_s (local.get $r) (local.get $rows)))
        (local.set $p0 (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $rowb))))
        (local.set $s (f32.const 0))
        (local.set $j (i32.const 0))
        (block $jd
          (loop $jl2
            (br_if $jd (i32.ge_s (local.get $j) (local.get $n)))
            (local.set $s (f32.add (local.get $s) (f32.mul
              (f32.load (i32.add (local.get $p0) (i32.shl (local.get $j) (i32.const 2))))
              (f32.load (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 1)))
            (br $jl2)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))) (local.get $s))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rl))))

  ;; out[i] = sum_t a[t] * v[t*stride+i] for i in [0, n), t in [0, count),
  ;; summed in order of t per element (lanes hold four elements i).
  (func $wsum_f32 (export "wsum_f32")
    (param $out i32) (param $a i32) (param $v i32) (param $stride i32) (param $n i32) (param $count i32)
    (local $i i32) (local $t i32) (local $acc v128) (local $s f32) (local $rowb i32) (local $p i32)
    (local $acc2 v128) (local $as v128) (local $pa i32) (local $end i32)
    (local.set $rowb (i32.shl (local.get $stride) (i32.const 2)))
    ;; eight elements a pass while they last (one load of att[t] for two
    ;; vectors), then four, then one
    (block $od
      (loop $ol
        (br_if $od (i32.gt_s (i32.add (local.get $i) (i32.const 8)) (local.get $n)))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $acc2 (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2))))
        (local.set $pa (local.get $a))
        (local.set $end (i32.add (local.get $a) (i32.shl (local.get $count) (i32.const 2))))
        (block $td8
          (loop $tl8
            (br_if $td8 (i32.ge_u (local.get $pa) (local.get $end)))
            (local.set $as (v128.load32_splat (local.get $pa)))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (local.get $as) (v128.load (local.get $p)))))
            (local.set $acc2 (f32x4.add (local.get $acc2) (f32x4.mul (local.get $as) (v128.load offset=16 (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (local.get $rowb)))
            (local.set $pa (i32.add (local.get $pa) (i32.const 4)))
            (br $tl8)))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $acc))
        (v128.store offset=16 (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $acc2))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $ol)))
    (block $qd
      (loop $ql
        (br_if $qd (i32.gt_s (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
        (local.set $acc (v128.const i32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2))))
        (local.set $t (i32.const 0))
        (block $td
          (loop $tl
            (br_if $td (i32.ge_s (local.get $t) (local.get $count)))
            (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul
              (f32x4.splat (f32.load (i32.add (local.get $a) (i32.shl (local.get $t) (i32.const 2)))))
              (v128.load (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (local.get $rowb)))
            (local.set $t (i32.add (local.get $t) (i32.const 1)))
            (br $tl)))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $acc))
        (local.set $i (i32.add (local.get $i) (i32.const 4)))
        (br $ql)))
    (block $id
      (loop $il
        (br_if $id (i32.ge_s (local.get $i) (local.get $n)))
        (local.set $s (f32.const 0))
        (local.set $p (i32.add (local.get $v) (i32.shl (local.get $i) (i32.const 2))))
        (local.set $t (i32.const 0))
        (block $td2
          (loop $tl2
            (br_if $td2 (i32.ge_s (local.get $t) (local.get $count)))
            (local.set $s (f32.add (local.get $s) (f32.mul
              (f32.load (i32.add (local.get $a) (i32.shl (local.get $t) (i32.const 2))))
              (f32.load (local.get $p)))))
            (local.set $p (i32.add (local.get $p) (local.get $rowb)))
            (local.set $t (i32.add (local.get $t) (i32.const 1)))
            (br $tl2)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2))) (local.get $s))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $il))))

  ;; e^x rounded to f32 for two f64 lanes, the operations of core/expf.go in
  ;; the same order (f64 arithmetic is exact IEEE, so the bits agree):
  ;; k = nearest(x*log2e), r = (x - k*ln2hi) - k*ln2lo, Taylor to degree 11,
  ;; times 2^k built from its exponent bits. Lanes outside (-120, 100) and
  ;; NaNs are fixed up by the caller.
  (func $exp2x (param $x v128) (result v128)
    (local $k v128) (local $r v128) (local $p v128)
    (local.set $k (f64x2.nearest (f64x2.mul (local.get $x) (v128.const f64x2 1.4426950408889634 1.4426950408889634))))
    (local.set $r (f64x2.sub
      (f64x2.sub (local.get $x) (f64x2.mul (local.get $k) (v128.const f64x2 6.93147180369123816490e-01 6.93147180369123816490e-01)))
      (f64x2.mul (local.get $k) (v128.const f64x2 1.90821492927058770002e-10 1.90821492927058770002e-10))))
    (local.set $p (v128.const f64x2 2.505210838544172e-08 2.505210838544172e-08))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 2.755731922398589e-07 2.755731922398589e-07)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 2.7557319223985893e-06 2.7557319223985893e-06)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 2.48015873015873e-05 2.48015873015873e-05)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.0001984126984126984 0.0001984126984126984)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.001388888888888889 0.001388888888888889)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.008333333333333333 0.008333333333333333)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.041666666666666664 0.041666666666666664)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.16666666666666666 0.16666666666666666)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 0.5 0.5)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 1 1)))
    (local.set $p (f64x2.add (f64x2.mul (local.get $p) (local.get $r)) (v128.const f64x2 1 1)))
    (f32x4.demote_f64x2_zero (f64x2.mul (local.get $p)
      (i64x2.shl (i64x2.add (i64x2.extend_low_i32x4_s (i32x4.trunc_sat_f64x2_s_zero (local.get $k)))
        (v128.const i64x2 1023 1023)) (i32.const 52)))))

  ;; expf of four f32 lanes, with core/expf.go's special cases.
  (func $expf4 (param $x v128) (result v128)
    (local $e v128)
    (local.set $e (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
      (call $exp2x (f64x2.promote_low_f32x4 (local.get $x)))
      (call $exp2x (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 0 0 0 0 0 0 0 (local.get $x) (local.get $x))))))
    (local.set $e (v128.bitselect (v128.const f32x4 inf inf inf inf) (local.get $e) (f32x4.gt (local.get $x) (v128.const f32x4 100 100 100 100))))
    (local.set $e (v128.bitselect (v128.const i32x4 0 0 0 0) (local.get $e) (f32x4.lt (local.get $x) (v128.const f32x4 -120 -120 -120 -120))))
    (v128.bitselect (local.get $x) (local.get $e) (f32x4.ne (local.get $x) (local.get $x))))

  ;; softmax of x[0..n) in place, core's softmax: max in order (a later
  ;; value replaces the max only if greater), exp(x - max) four at a time,
  ;; the sum in order, then each divided by the sum.
  (func $softmax (export "softmax") (param $att i32) (param $count i32)
    (local $mx f32) (local $x f32) (local $sum f32) (local $p i32) (local $end i32) (local $vsq v128)
    (local.set $end (i32.add (local.get $att) (i32.shl (local.get $count) (i32.const 2))))
    ;; max, in order (a later value replaces the max only if greater)
    (local.set $mx (f32.load (local.get $att)))
    (local.set $p (i32.add (local.get $att) (i32.const 4)))
    (block $d3 (loop $l3
      (br_if $d3 (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $x (f32.load (local.get $p)))
      (if (f32.gt (local.get $x) (local.get $mx)) (then (local.set $mx (local.get $x))))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $l3)))
    ;; exp(x - max), four at a time
    (local.set $vsq (f32x4.splat (local.get $mx)))
    (local.set $p (local.get $att))
    (block $d4 (loop $l4
      (br_if $d4 (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
      (v128.store (local.get $p) (call $expf4 (f32x4.sub (v128.load (local.get $p)) (local.get $vsq))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $l4)))
    (block $d5 (loop $l5
      (br_if $d5 (i32.ge_u (local.get $p) (local.get $end)))
      (f32.store (local.get $p) (f32x4.extract_lane 0 (call $expf4 (f32x4.splat (f32.sub (f32.load (local.get $p)) (local.get $mx))))))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $l5)))
    ;; sum in order of t
    (local.set $sum (f32.const 0))
    (local.set $p (local.get $att))
    (block $d6 (loop $l6
      (br_if $d6 (i32.ge_u (local.get $p) (local.get $end)))
      (local.set $sum (f32.add (local.get $sum) (f32.load (local.get $p))))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $l6)))
    ;; normalize
    (local.set $vsq (f32x4.splat (local.get $sum)))
    (local.set $p (local.get $att))
    (block $d7 (loop $l7
      (br_if $d7 (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
      (v128.store (local.get $p) (f32x4.div (v128.load (local.get $p)) (local.get $vsq)))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $l7)))
    (block $d8 (loop $l8
      (br_if $d8 (i32.ge_u (local.get $p) (local.get $end)))
      (f32.store (local.get $p) (f32.div (f32.load (local.get $p)) (local.get $sum)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $l8)))
  )

  ;; SwiGLU of the FFN, core's swiglu: h[i] = (h[i] * (1 / (1 + expf(-h[i]))))
  ;; * g[i] for i < n, each step rounded to f32 as in Go.
  (func (export "swiglu") (param $h i32) (param $g i32) (param $n i32)
    (local $end i32) (local $v v128) (local $one v128)
    (local.set $one (v128.const f32x4 1 1 1 1))
    (local.set $end (i32.add (local.get $h) (i32.shl (local.get $n) (i32.const 2))))
    (block $d (loop $l
      (br_if $d (i32.gt_u (i32.add (local.get $h) (i32.const 16)) (local.get $end)))
      (local.set $v (v128.load (local.get $h)))
      (v128.store (local.get $h) (f32x4.mul
        (f32x4.mul (local.get $v) (f32x4.div (local.get $one) (f32x4.add (local.get $one) (call $expf4 (f32x4.neg (local.get $v))))))
        (v128.load (local.get $g))))
      (local.set $h (i32.add (local.get $h) (i32.const 16)))
      (local.set $g (i32.add (local.get $g) (i32.const 16)))
      (br $l)))
    (block $d1 (loop $l1
      (br_if $d1 (i32.ge_u (local.get $h) (local.get $end)))
      (local.set $v (v128.load32_splat (local.get $h)))
      (f32.store (local.get $h) (f32x4.extract_lane 0 (f32x4.mul
        (f32x4.mul (local.get $v) (f32x4.div (local.get $one) (f32x4.add (local.get $one) (call $expf4 (f32x4.neg (local.get $v))))))
        (v128.load32_splat (local.get $g)))))
      (local.set $h (i32.add (local.get $h) (i32.const 4)))
      (local.set $g (i32.add (local.get $g) (i32.const 4)))
      (br $l1))))

  ;; The index of the largest of x[0..n) (n >= 1), the first on ties, as
  ;; core's Argmax: a value replaces the best only if greater, so NaNs never
  ;; win and a NaN at 0 wins outright. Lane l keeps the best of positions
  ;; l, l+4, ... (starting from x[0] at index 0, so no lane starts on a NaN);
  ;; then the greatest lane, the smallest index on ties, then the tail.
  (func (export "argmax") (param $x i32) (param $n i32) (result i32)
    (local $bv v128) (local $bi v128) (local $ci v128) (local $v v128) (local $m v128)
    (local $i i32) (local $best i32) (local $bestv f32) (local $lv f32) (local $li i32) (local $l i32)
    (local.set $bestv (f32.load (local.get $x)))
    (if (f32.ne (local.get $bestv) (local.get $bestv)) (then (return (i32.const 0))))
    (local.set $bv (f32x4.splat (local.get $bestv)))
    (local.set $ci (v128.const i32x4 0 1 2 3))
    (block $d (loop $l
      (br_if $d (i32.gt_s (i32.add (local.get $i) (i32.const 4)) (local.get $n)))
      (local.set $v (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $m (f32x4.gt (local.get $v) (local.get $bv)))
      (local.set $bv (v128.bitselect (local.get $v) (local.get $bv) (local.get $m)))
      (local.set $bi (v128.bitselect (local.get $ci) (local.get $bi) (local.get $m)))
      (local.set $ci (i32x4.add (local.get $ci) (v128.const i32x4 4 4 4 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $l)))
    ;; lanes: lane 0 first; a later lane wins if greater, or equal with a smaller index
    (local.set $best (i32x4.extract_lane 0 (local.get $bi)))
    (local.set $bestv (f32x4.extract_lane 0 (local.get $bv)))
    (local.set $lv (f32x4.extract_lane 1 (local.get $bv)))
    (local.set $li (i32x4.extract_lane 1 (local.get $bi)))
    (if (i32.or (f32.gt (local.get $lv) (local.get $bestv))
          (i32.and (f32.eq (local.get $lv) (local.get $bestv)) (i32.lt_s (local.get $li) (local.get $best))))
      (then (local.set $best (local.get $li)) (local.set $bestv (local.get $lv))))
    (local.set $lv (f32x4.extract_lane 2 (local.get $bv)))
    (local.set $li (i32x4.extract_lane 2 (local.get $bi)))
    (if (i32.or (f32.gt (local.get $lv) (local.get $bestv))
          (i32.and (f32.eq (local.get $lv) (local.get $bestv)) (i32.lt_s (local.get $li) (local.get $best))))
      (then (local.set $best (local.get $li)) (local.set $bestv (local.get $lv))))
    (local.set $lv (f32x4.extract_lane 3 (local.get $bv)))
    (local.set $li (i32x4.extract_lane 3 (local.get $bi)))
    (if (i32.or (f32.gt (local.get $lv) (local.get $bestv))
          (i32.and (f32.eq (local.get $lv) (local.get $bestv)) (i32.lt_s (local.get $li) (local.get $best))))
      (then (local.set $best (local.get $li)) (local.set $bestv (local.get $lv))))
    ;; tail, in order
    (block $td (loop $tl
      (br_if $td (i32.ge_s (local.get $i) (local.get $n)))
      (local.set $lv (f32.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))
      (if (f32.gt (local.get $lv) (local.get $bestv)) (then (local.set $best (local.get $i)) (local.set $bestv (local.get $lv))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $tl)))
    (local.get $best))

  ;; One attention head, core/model.go's steps in one call: att[t] = (q . k_t)
  ;; / sqrths for t < count (keys at k + t*stride floats), softmax over att
  ;; (max, exp, sum in order of t, divide), out[i] = sum_t att[t] * v_t[i].
  (func (export "attention")
    (param $q i32) (param $k i32) (param $v i32) (param $stride i32) (param $hs i32) (param $count i32)
    (param $att i32) (param $out i32) (param $sqrths f32)
    (local $p i32) (local $end i32) (local $vsq v128)
    (call $matvec_f32 (local.get $att) (local.get $k) (local.get $stride) (local.get $q) (local.get $hs) (local.get $count))
    (local.set $end (i32.add (local.get $att) (i32.shl (local.get $count) (i32.const 2))))
    ;; scale
    (local.set $vsq (f32x4.splat (local.get $sqrths)))
    (local.set $p (local.get $att))
    (block $d1 (loop $l1
      (br_if $d1 (i32.gt_u (i32.add (local.get $p) (i32.const 16)) (local.get $end)))
      (v128.store (local.get $p) (f32x4.div (v128.load (local.get $p)) (local.get $vsq)))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (br $l1)))
    (block $d2 (loop $l2
      (br_if $d2 (i32.ge_u (local.get $p) (local.get $end)))
      (f32.store (local.get $p) (f32.div (f32.load (local.get $p)) (local.get $sqrths)))
      (local.set $p (i32.add (local.get $p) (i32.const 4)))
      (br $l2)))
    (call $softmax (local.get $att) (local.get $count))
    (call $wsum_f32 (local.get $out) (local.get $att) (local.get $v) (local.get $stride) (local.get $hs) (local.get $count)))

  ;; Quantizes x[0..n) to int8 in groups of ga (the last may be shorter), as
  ;; core's quantizeQ8: scale = max|x| / 127, q = x/scale rounded half away
  ;; from zero (in f64, where x/scale + 0.5 is exact), all-zero groups get
  ;; scale 0 and zeros.
  (func $round4 (param $v v128) (result v128)
    ;; four f32 lanes, rounded half away from zero, as i32 lanes
    (local $lo v128) (local $hi v128)
    (local.set $lo (f64x2.promote_low_f32x4 (local.get $v)))
    (local.set $hi (f64x2.promote_low_f32x4 (i8x16.shuffle 8 9 10 11 12 13 14 15 0 0 0 0 0 0 0 0 (local.get $v) (local.get $v))))
    (local.set $lo (f64x2.trunc (f64x2.add (local.get $lo)
      (v128.or (v128.const f64x2 0.5 0.5) (v128.and (local.get $lo) (v128.const i64x2 0x8000000000000000 0x8000000000000000))))))
    (local.set $hi (f64x2.trunc (f64x2.add (local.get $hi)
      (v128.or (v128.const f64x2 0.5 0.5) (v128.and (local.get $hi) (v128.const i64x2 0x8000000000000000 0x8000000000000000))))))
    (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23
      (i32x4.trunc_sat_f64x2_s_zero (local.get $lo)) (i32x4.trunc_sat_f64x2_s_zero (local.get $hi))))

  (func (export "quantize_q8") (param $x i32) (param $n i32) (param $ga i32) (param $q i32) (param $s i32)
    (local $j0 i32) (local $j1 i32) (local $j i32) (local $amax v128) (local $m f32) (local $scale f32) (local $vs v128) (local $r v128)
    (block $gd
      (loop $gl
        (br_if $gd (i32.ge_s (local.get $j0) (local.get $n)))
        (local.set $j1 (i32.add (local.get $j0) (local.get $ga)))
        (if (i32.gt_s (local.get $j1) (local.get $n)) (then (local.set $j1 (local.get $n))))
        ;; max |x| over the group
        (local.set $amax (v128.const i32x4 0 0 0 0))
        (local.set $j (local.get $j0))
        (block $md (loop $ml
          (br_if $md (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $j1)))
          (local.set $amax (f32x4.max (local.get $amax) (f32x4.abs (v128.load (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2)))))))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $ml)))
        (block $md1 (loop $ml1
          (br_if $md1 (i32.ge_s (local.get $j) (local.get $j1)))
          (local.set $amax (f32x4.max (local.get $amax) (f32x4.splat (f32.abs (f32.load (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2))))))))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $ml1)))
        (local.set $m (f32.max (f32.max (f32x4.extract_lane 0 (local.get $amax)) (f32x4.extract_lane 1 (local.get $amax)))
                               (f32.max (f32x4.extract_lane 2 (local.get $amax)) (f32x4.extract_lane 3 (local.get $amax)))))
        (local.set $scale (f32.div (local.get $m) (f32.const 127)))
        (f32.store (i32.add (local.get $s) (i32.shl (i32.div_u (local.get $j0) (local.get $ga)) (i32.const 2))) (local.get $scale))
        (local.set $vs (f32x4.splat (local.get $scale)))
        (local.set $j (local.get $j0))
        (block $qd (loop $ql
          (br_if $qd (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $j1)))
          (if (f32.eq (local.get $scale) (f32.const 0))
            (then (local.set $r (v128.const i32x4 0 0 0 0)))
            (else (local.set $r (call $round4 (f32x4.div (v128.load (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2)))) (local.get $vs))))))
          (v128.store32_lane 0 (i32.add (local.get $q) (local.get $j))
            (i8x16.narrow_i16x8_s (i16x8.narrow_i32x4_s (local.get $r) (local.get $r)) (i16x8.narrow_i32x4_s (local.get $r) (local.get $r))))
          (local.set $j (i32.add (local.get $j) (i32.const 4)))
          (br $ql)))
        (block $qd1 (loop $ql1
          (br_if $qd1 (i32.ge_s (local.get $j) (local.get $j1)))
          (if (f32.eq (local.get $scale) (f32.const 0))
            (then (local.set $r (v128.const i32x4 0 0 0 0)))
            (else (local.set $r (call $round4 (f32x4.splat (f32.div (f32.load (i32.add (local.get $x) (i32.shl (local.get $j) (i32.const 2)))) (local.get $scale)))))))
          (i32.store8 (i32.add (local.get $q) (local.get $j)) (i32x4.extract_lane 0 (local.get $r)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $ql1)))
        (local.set $j0 (local.get $j1))
        (br $gl))))

  ;; Exact sum_{k<len} p[k]*q[k] of int8 vectors (8 at a time widened to i16).
  (func $dot_i8 (param $p i32) (param $q i32) (param $len i32) (result i32)
    (local $k i32) (local $acc v128) (local $s i32)
    (block $d8
      (loop $l8
        (br_if $d8 (i32.gt_s (i32.add (local.get $k) (i32.const 8)) (local.get $len)))
        (local.set $acc (i32x4.add (local.get $acc) (i32x4.dot_i16x8_s
          (v128.load8x8_s (i32.add (local.get $p) (local.get $k)))
          (v128.load8x8_s (i32.add (local.get $q) (local.get $k))))))
        (local.set $k (i32.add (local.get $k) (i32.const 8)))
        (br $l8)))
    (local.set $s (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
      (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc)))))
    (block $d1
      (loop $l1
        (br_if $d1 (i32.ge_s (local.get $k) (local.get $len)))
        (local.set $s (i32.add (local.get $s) (i32.mul
          (i32.load8_s (i32.add (local.get $p) (local.get $k)))
          (i32.load8_s (i32.add (local.get $q) (local.get $k))))))
        (local.set $k (i32.add (local.get $k) (i32.const 1)))
        (br $l1)))
    (local.get $s))

  ;; Exact sum over j in [j0, j1) of cb[index j of a packed 4-bit row] * q[j].
  (func $dot_q4 (param $row i32) (param $cb v128) (param $q i32) (param $j0 i32) (param $j1 i32) (result i32)
    (local $j i32) (local $acc v128) (local $s i32) (local $bytes v128) (local $idx v128) (local $wv v128) (local $xv v128) (local $b i32)
    (local.set $j (local.get $j0))
    ;; an odd start takes the high nibble of its byte alone
    (if (i32.and (i32.lt_s (local.get $j) (local.get $j1)) (i32.and (local.get $j) (i32.const 1)))
      (then
        (local.set $s (i32.mul
          (i8x16.extract_lane_s 0 (i8x16.swizzle (local.get $cb) (i8x16.splat
            (i32.shr_u (i32.load8_u (i32.add (local.get $row) (i32.shr_u (local.get $j) (i32.const 1)))) (i32.const 4)))))
          (i32.load8_s (i32.add (local.get $q) (local.get $j)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))))
    (block $d16
      (loop $l16
        (br_if $d16 (i32.gt_s (i32.add (local.get $j) (i32.const 16)) (local.get $j1)))
        (local.set $bytes (v128.load64_zero (i32.add (local.get $row) (i32.shr_u (local.get $j) (i32.const 1)))))
        (local.set $idx (i8x16.shuffle 0 16 1 17 2 18 3 19 4 20 5 21 6 22 7 23
          (v128.and (local.get $bytes) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))
          (i8x16.shr_u (local.get $bytes) (i32.const 4))))
        (local.set $wv (i8x16.swizzle (local.get $cb) (local.get $idx)))
        (local.set $xv (v128.load (i32.add (local.get $q) (local.get $j))))
        (local.set $acc (i32x4.add (local.get $acc) (i32x4.dot_i16x8_s
          (i16x8.extend_low_i8x16_s (local.get $wv)) (i16x8.extend_low_i8x16_s (local.get $xv)))))
        (local.set $acc (i32x4.add (local.get $acc) (i32x4.dot_i16x8_s
          (i16x8.extend_high_i8x16_s (local.get $wv)) (i16x8.extend_high_i8x16_s (local.get $xv)))))
        (local.set $j (i32.add (local.get $j) (i32.const 16)))
        (br $l16)))
    (local.set $s (i32.add (local.get $s) (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
      (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc))))))
    (block $d1
      (loop $l1
        (br_if $d1 (i32.ge_s (local.get $j) (local.get $j1)))
        (local.set $b (i32.load8_u (i32.add (local.get $row) (i32.shr_u (local.get $j) (i32.const 1)))))
        (if (i32.and (local.get $j) (i32.const 1))
          (then (local.set $b (i32.shr_u (local.get $b) (i32.const 4))))
          (else (local.set $b (i32.and (local.get $b) (i32.const 15)))))
        (local.set $s (i32.add (local.get $s) (i32.mul
          (i8x16.extract_lane_s 0 (i8x16.swizzle (local.get $cb) (i8x16.splat (local.get $b))))
          (i32.load8_s (i32.add (local.get $q) (local.get $j))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $l1)))
    (local.get $s))

  ;; Quantized matrix-vector products, rows [0, rows) of a matrix whose first
  ;; row is at $w (values) and $ws (scales), writing out[0..rows). Per row:
  ;;   val = sum_g ws[g] * (sum_{a in g} f32(isum_a) * xs[a])
  ;; kind 0: int8 values (row stride n bytes); kind 1: packed 4-bit indices
  ;; (row stride (n+1)/2 bytes) into the 16-byte codebook at $cb.
  (func $matvec_q (param $kind i32) (param $out i32) (param $w i32) (param $cb i32) (param $ws i32)
    (param $xq i32) (param $xs i32) (param $n i32) (param $gw i32) (param $ga i32) (param $rows i32)
    (local $r i32) (local $row i32) (local $rowb i32) (local $gpr i32) (local $g i32) (local $j0 i32) (local $j1 i32)
    (local $a0 i32) (local $a1 i32) (local $val f32) (local $acc f32) (local $isum i32) (local $cbv v128)
    (local.set $gpr (i32.div_u (i32.sub (i32.add (local.get $n) (local.get $gw)) (i32.const 1)) (local.get $gw)))
    (local.set $rowb (local.get $n))
    (if (local.get $kind) (then
      (local.set $rowb (i32.shr_u (i32.add (local.get $n) (i32.const 1)) (i32.const 1)))
      (local.set $cbv (v128.load (local.get $cb)))))
    (block $rd
      (loop $rl
        (br_if $rd (i32.ge_s (local.get $r) (local.get $rows)))
        (local.set $row (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $rowb))))
        (local.set $val (f32.const 0))
        (local.set $g (i32.const 0))
        (local.set $j0 (i32.const 0))
        (block $gd
          (loop $gl
            (br_if $gd (i32.ge_s (local.get $j0) (local.get $n)))
            (local.set $j1 (i32.add (local.get $j0) (local.get $gw)))
            (if (i32.gt_s (local.get $j1) (local.get $n)) (then (local.set $j1 (local.get $n))))
            (local.set $acc (f32.const 0))
            (local.set $a0 (local.get $j0))
            (block $ad
              (loop $al
                (br_if $ad (i32.ge_s (local.get $a0) (local.get $j1)))
                (local.set $a1 (i32.add (local.get $a0) (local.get $ga)))
                (if (i32.gt_s (local.get $a1) (local.get $j1)) (then (local.set $a1 (local.get $j1))))
                (if (local.get $kind)
                  (then (local.set $isum (call $dot_q4 (local.get $row) (local.get $cbv) (local.get $xq) (local.get $a0) (local.get $a1))))
                  (else (local.set $isum (call $dot_i8 (i32.add (local.get $row) (local.get $a0))
                    (i32.add (local.get $xq) (local.get $a0)) (i32.sub (local.get $a1) (local.get $a0))))))
                (local.set $acc (f32.add (local.get $acc) (f32.mul (f32.convert_i32_s (local.get $isum))
                  (f32.load (i32.add (local.get $xs) (i32.shl (i32.div_u (local.get $a0) (local.get $ga)) (i32.const 2)))))))
                (local.set $a0 (i32.add (local.get $a0) (local.get $ga)))
                (br $al)))
            (local.set $val (f32.add (local.get $val) (f32.mul (local.get $acc)
              (f32.load (i32.add (local.get $ws) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $gpr)) (local.get $g)) (i32.const 2)))))))
            (local.set $g (i32.add (local.get $g) (i32.const 1)))
            (local.set $j0 (i32.add (local.get $j0) (local.get $gw)))
            (br $gl)))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))) (local.get $val))
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (br $rl))))

;; Weight j of a row: int8 (kind 0) or the codebook value of a 4-bit index.
  (func $wval (param $kind i32) (param $row i32) (param $j i32) (param $cbv v128) (result i32)
    (local $b i32)
    (if (i32.eqz (local.get $kind)) (then (return (i32.load8_s (i32.add (local.get $row) (local.get $j))))))
    (local.set $b (i32.load8_u (i32.add (local.get $row) (i32.shr_u (local.get $j) (i32.const 1)))))
    (if (i32.and (local.get $j) (i32.const 1))
      (then (local.set $b (i32.shr_u (local.get $b) (i32.const 4))))
      (else (local.set $b (i32.and (local.get $b) (i32.const 15)))))
    (i8x16.extract_lane_s 0 (i8x16.swizzle (local.get $cbv) (i8x16.splat (local.get $b)))))

    ;; Four rows at once (lane k holds row r+k): activations are widened once
  ;; for four rows, and the four rows' integer sums of a group are reduced
  ;; together. Per row the float work is matvec_q's, in its order. kind 0:
  ;; int8 rows of n bytes; kind 1: packed 4-bit rows of (n+1)/2 bytes through
  ;; the codebook at $cb (activation groups must be even). A 4-bit byte holds
  ;; an even-position value (low nibble) and the next odd one (high): instead
  ;; of interleaving the decoded weights, the activations are split into even
  ;; and odd positions once for the four rows. Returns the number of rows
  ;; done (a multiple of 4); matvec_q does the rest.
  (func $matvec_qx4 (param $kind i32) (param $out i32) (param $w i32) (param $cb i32) (param $ws i32)
    (param $xq i32) (param $xs i32) (param $n i32) (param $gw i32) (param $ga i32) (param $rows i32) (result i32)
    (local $r i32) (local $p0 i32) (local $p1 i32) (local $p2 i32) (local $p3 i32) (local $gpr i32) (local $g i32)
    (local $j0 i32) (local $j1 i32) (local $a0 i32) (local $a1 i32) (local $k i32)
    (local $c0 v128) (local $c1 v128) (local $c2 v128) (local $c3 v128) (local $x8 v128) (local $isum v128)
    (local $acc v128) (local $val v128) (local $t0 i32) (local $t1 i32) (local $t2 i32) (local $t3 i32) (local $xv i32) (local $sp i32)
    (local $rowb i32) (local $cbv v128) (local $kb i32) (local $xa v128) (local $xb v128)
    (local $xe0 v128) (local $xe1 v128) (local $xo0 v128) (local $xo1 v128) (local $b v128) (local $we v128) (local $wo v128)
    (local.set $gpr (i32.div_u (i32.sub (i32.add (local.get $n) (local.get $gw)) (i32.const 1)) (local.get $gw)))
    (local.set $rowb (local.get $n))
    (if (local.get $kind) (then
      (if (i32.and (local.get $ga) (i32.const 1)) (then (return (i32.const 0))))
      (local.set $rowb (i32.shr_u (i32.add (local.get $n) (i32.const 1)) (i32.const 1)))
      (local.set $cbv (v128.load (local.get $cb)))))
    (block $rd
      (loop $rl
        (br_if $rd (i32.gt_s (i32.add (local.get $r) (i32.const 4)) (local.get $rows)))
        (local.set $p0 (i32.add (local.get $w) (i32.mul (local.get $r) (local.get $rowb))))
        (local.set $p1 (i32.add (local.get $p0) (local.get $rowb)))
        (local.set $p2 (i32.add (local.get $p1) (local.get $rowb)))
        (local.set $p3 (i32.add (local.get $p2) (local.get $rowb)))
        (local.set $val (v128.const i32x4 0 0 0 0))
        (local.set $g (i32.const 0))
        (local.set $j0 (i32.const 0))
        (block $gd
          (loop $gl
            (br_if $gd (i32.ge_s (local.get $j0) (local.get $n)))
            (local.set $j1 (i32.add (local.get $j0) (local.get $gw)))
            (if (i32.gt_s (local.get $j1) (local.get $n)) (then (local.set $j1 (local.get $n))))
            (local.set $acc (v128.const i32x4 0 0 0 0))
            (local.set $a0 (local.get $j0))
            (block $ad
              (loop $al
                (br_if $ad (i32.ge_s (local.get $a0) (local.get $j1)))
                (local.set $a1 (i32.add (local.get $a0) (local.get $ga)))
                (if (i32.gt_s (local.get $a1) (local.get $j1)) (then (local.set $a1 (local.get $j1))))
                (local.set $c0 (v128.const i32x4 0 0 0 0))
                (local.set $c1 (v128.const i32x4 0 0 0 0))
                (local.set $c2 (v128.const i32x4 0 0 0 0))
                (local.set $c3 (v128.const i32x4 0 0 0 0))
                (local.set $k (local.get $a0))
                (if (local.get $kind)
                  (then
                    ;; 32 values a step: 16 bytes per row
                    (block $kd32
                      (loop $kl32
                        (br_if $kd32 (i32.gt_s (i32.add (local.get $k) (i32.const 32)) (local.get $a1)))
                        (local.set $xa (v128.load (i32.add (local.get $xq) (local.get $k))))
                        (local.set $xb (v128.load (i32.add (local.get $xq) (i32.add (local.get $k) (i32.const 16)))))
                        (local.set $xe1 (i8x16.shuffle 0 2 4 6 8 10 12 14 16 18 20 22 24 26 28 30 (local.get $xa) (local.get $xb)))
                        (local.set $xo1 (i8x16.shuffle 1 3 5 7 9 11 13 15 17 19 21 23 25 27 29 31 (local.get $xa) (local.get $xb)))
                        (local.set $xe0 (i16x8.extend_low_i8x16_s (local.get $xe1)))
                        (local.set $xe1 (i16x8.extend_high_i8x16_s (local.get $xe1)))
                        (local.set $xo0 (i16x8.extend_low_i8x16_s (local.get $xo1)))
                        (local.set $xo1 (i16x8.extend_high_i8x16_s (local.get $xo1)))
                        (local.set $kb (i32.shr_u (local.get $k) (i32.const 1)))
                        (local.set $b (v128.load (i32.add (local.get $p0) (local.get $kb))))
                        (local.set $we (i8x16.swizzle (local.get $cbv) (v128.and (local.get $b) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))))
                        (local.set $wo (i8x16.swizzle (local.get $cbv) (i8x16.shr_u (local.get $b) (i32.const 4))))
                        (local.set $c0 (i32x4.add (local.get $c0) (i32x4.add
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wo)) (local.get $xo0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wo)) (local.get $xo1))))))
                        (local.set $b (v128.load (i32.add (local.get $p1) (local.get $kb))))
                        (local.set $we (i8x16.swizzle (local.get $cbv) (v128.and (local.get $b) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))))
                        (local.set $wo (i8x16.swizzle (local.get $cbv) (i8x16.shr_u (local.get $b) (i32.const 4))))
                        (local.set $c1 (i32x4.add (local.get $c1) (i32x4.add
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wo)) (local.get $xo0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wo)) (local.get $xo1))))))
                        (local.set $b (v128.load (i32.add (local.get $p2) (local.get $kb))))
                        (local.set $we (i8x16.swizzle (local.get $cbv) (v128.and (local.get $b) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))))
                        (local.set $wo (i8x16.swizzle (local.get $cbv) (i8x16.shr_u (local.get $b) (i32.const 4))))
                        (local.set $c2 (i32x4.add (local.get $c2) (i32x4.add
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wo)) (local.get $xo0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wo)) (local.get $xo1))))))
                        (local.set $b (v128.load (i32.add (local.get $p3) (local.get $kb))))
                        (local.set $we (i8x16.swizzle (local.get $cbv) (v128.and (local.get $b) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15))))
                        (local.set $wo (i8x16.swizzle (local.get $cbv) (i8x16.shr_u (local.get $b) (i32.const 4))))
                        (local.set $c3 (i32x4.add (local.get $c3) (i32x4.add
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wo)) (local.get $xo0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wo)) (local.get $xo1))))))
                        (local.set $k (i32.add (local.get $k) (i32.const 32)))
                        (br $kl32)))
                    ;; then 16 values a step: 8 bytes per row
                    (block $kd16
                      (loop $kl16
                        (br_if $kd16 (i32.gt_s (i32.add (local.get $k) (i32.const 16)) (local.get $a1)))
                        (local.set $xa (v128.load (i32.add (local.get $xq) (local.get $k))))
                        (local.set $xe0 (i16x8.extend_low_i8x16_s (i8x16.shuffle 0 2 4 6 8 10 12 14 0 0 0 0 0 0 0 0 (local.get $xa) (local.get $xa))))
                        (local.set $xo0 (i16x8.extend_low_i8x16_s (i8x16.shuffle 1 3 5 7 9 11 13 15 0 0 0 0 0 0 0 0 (local.get $xa) (local.get $xa))))
                        (local.set $kb (i32.shr_u (local.get $k) (i32.const 1)))
                        (local.set $b (v128.load64_zero (i32.add (local.get $p0) (local.get $kb))))
                        (local.set $c0 (i32x4.add (local.get $c0) (i32x4.add
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.swizzle (local.get $cbv)
                            (v128.and (local.get $b) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))) (local.get $xe0))
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.swizzle (local.get $cbv)
                            (i8x16.shr_u (local.get $b) (i32.const 4)))) (local.get $xo0)))))
                        (local.set $b (v128.load64_zero (i32.add (local.get $p1) (local.get $kb))))
                        (local.set $c1 (i32x4.add (local.get $c1) (i32x4.add
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.swizzle (local.get $cbv)
                            (v128.and (local.get $b) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))) (local.get $xe0))
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.swizzle (local.get $cbv)
                            (i8x16.shr_u (local.get $b) (i32.const 4)))) (local.get $xo0)))))
                        (local.set $b (v128.load64_zero (i32.add (local.get $p2) (local.get $kb))))
                        (local.set $c2 (i32x4.add (local.get $c2) (i32x4.add
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.swizzle (local.get $cbv)
                            (v128.and (local.get $b) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))) (local.get $xe0))
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.swizzle (local.get $cbv)
                            (i8x16.shr_u (local.get $b) (i32.const 4)))) (local.get $xo0)))))
                        (local.set $b (v128.load64_zero (i32.add (local.get $p3) (local.get $kb))))
                        (local.set $c3 (i32x4.add (local.get $c3) (i32x4.add
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.swizzle (local.get $cbv)
                            (v128.and (local.get $b) (v128.const i8x16 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15 15)))) (local.get $xe0))
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (i8x16.swizzle (local.get $cbv)
                            (i8x16.shr_u (local.get $b) (i32.const 4)))) (local.get $xo0)))))
                        (local.set $k (i32.add (local.get $k) (i32.const 16)))
                        (br $kl16))))
                  (else
                    (if (i32.eqz (local.get $cb)) (then
                    ;; 32 values a step: activations widened once for four rows
                    ;; (not in the short-step variant, which passes a non-zero $cb)
                    (block $kd32
                      (loop $kl32
                        (br_if $kd32 (i32.gt_s (i32.add (local.get $k) (i32.const 32)) (local.get $a1)))
                        (local.set $xa (v128.load (i32.add (local.get $xq) (local.get $k))))
                        (local.set $xb (v128.load (i32.add (local.get $xq) (i32.add (local.get $k) (i32.const 16)))))
                        (local.set $xe0 (i16x8.extend_low_i8x16_s (local.get $xa)))
                        (local.set $xe1 (i16x8.extend_high_i8x16_s (local.get $xa)))
                        (local.set $xo0 (i16x8.extend_low_i8x16_s (local.get $xb)))
                        (local.set $xo1 (i16x8.extend_high_i8x16_s (local.get $xb)))
                        (local.set $we (v128.load (i32.add (local.get $p0) (local.get $k))))
                        (local.set $wo (v128.load (i32.add (local.get $p0) (i32.add (local.get $k) (i32.const 16)))))
                        (local.set $c0 (i32x4.add (local.get $c0) (i32x4.add
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wo)) (local.get $xo0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wo)) (local.get $xo1))))))
                        (local.set $we (v128.load (i32.add (local.get $p1) (local.get $k))))
                        (local.set $wo (v128.load (i32.add (local.get $p1) (i32.add (local.get $k) (i32.const 16)))))
                        (local.set $c1 (i32x4.add (local.get $c1) (i32x4.add
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wo)) (local.get $xo0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wo)) (local.get $xo1))))))
                        (local.set $we (v128.load (i32.add (local.get $p2) (local.get $k))))
                        (local.set $wo (v128.load (i32.add (local.get $p2) (i32.add (local.get $k) (i32.const 16)))))
                        (local.set $c2 (i32x4.add (local.get $c2) (i32x4.add
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wo)) (local.get $xo0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wo)) (local.get $xo1))))))
                        (local.set $we (v128.load (i32.add (local.get $p3) (local.get $k))))
                        (local.set $wo (v128.load (i32.add (local.get $p3) (i32.add (local.get $k) (i32.const 16)))))
                        (local.set $c3 (i32x4.add (local.get $c3) (i32x4.add
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))
                          (i32x4.add (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $wo)) (local.get $xo0))
                                     (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $wo)) (local.get $xo1))))))
                        (local.set $k (i32.add (local.get $k) (i32.const 32)))
                        (br $kl32)))
                    ;; then 16 values a step
                    (block $kd16
                      (loop $kl16
                        (br_if $kd16 (i32.gt_s (i32.add (local.get $k) (i32.const 16)) (local.get $a1)))
                        (local.set $xa (v128.load (i32.add (local.get $xq) (local.get $k))))
                        (local.set $xe0 (i16x8.extend_low_i8x16_s (local.get $xa)))
                        (local.set $xe1 (i16x8.extend_high_i8x16_s (local.get $xa)))
                        (local.set $we (v128.load (i32.add (local.get $p0) (local.get $k))))
                        (local.set $c0 (i32x4.add (local.get $c0) (i32x4.add
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                          (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))))
                        (local.set $we (v128.load (i32.add (local.get $p1) (local.get $k))))
                        (local.set $c1 (i32x4.add (local.get $c1) (i32x4.add
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                          (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))))
                        (local.set $we (v128.load (i32.add (local.get $p2) (local.get $k))))
                        (local.set $c2 (i32x4.add (local.get $c2) (i32x4.add
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                          (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))))
                        (local.set $we (v128.load (i32.add (local.get $p3) (local.get $k))))
                        (local.set $c3 (i32x4.add (local.get $c3) (i32x4.add
                          (i32x4.dot_i16x8_s (i16x8.extend_low_i8x16_s (local.get $we)) (local.get $xe0))
                          (i32x4.dot_i16x8_s (i16x8.extend_high_i8x16_s (local.get $we)) (local.get $xe1)))))
                        (local.set $k (i32.add (local.get $k) (i32.const 16)))
                        (br $kl16)))))
                (block $kd
                  (loop $kl
                    (br_if $kd (i32.gt_s (i32.add (local.get $k) (i32.const 8)) (local.get $a1)))
                    (local.set $x8 (v128.load8x8_s (i32.add (local.get $xq) (local.get $k))))
                    (local.set $c0 (i32x4.add (local.get $c0) (i32x4.dot_i16x8_s (v128.load8x8_s (i32.add (local.get $p0) (local.get $k))) (local.get $x8))))
                    (local.set $c1 (i32x4.add (local.get $c1) (i32x4.dot_i16x8_s (v128.load8x8_s (i32.add (local.get $p1) (local.get $k))) (local.get $x8))))
                    (local.set $c2 (i32x4.add (local.get $c2) (i32x4.dot_i16x8_s (v128.load8x8_s (i32.add (local.get $p2) (local.get $k))) (local.get $x8))))
                    (local.set $c3 (i32x4.add (local.get $c3) (i32x4.dot_i16x8_s (v128.load8x8_s (i32.add (local.get $p3) (local.get $k))) (local.get $x8))))
                    (local.set $k (i32.add (local.get $k) (i32.const 8)))
                    (br $kl)))))
                ;; reduce: lane i of isum = total of c_i
                (local.set $c0 (i32x4.add
                  (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c0) (local.get $c1))
                  (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c0) (local.get $c1))))
                (local.set $c2 (i32x4.add
                  (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $c2) (local.get $c3))
                  (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $c2) (local.get $c3))))
                (local.set $isum (i32x4.add
                  (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $c0) (local.get $c2))
                  (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $c0) (local.get $c2))))
                ;; the group's last a1-k values, one at a time
                (if (i32.lt_s (local.get $k) (local.get $a1)) (then
                  (local.set $t0 (i32.const 0)) (local.set $t1 (i32.const 0)) (local.set $t2 (i32.const 0)) (local.set $t3 (i32.const 0))
                  (block $td (loop $tl
                    (br_if $td (i32.ge_s (local.get $k) (local.get $a1)))
                    (local.set $xv (i32.load8_s (i32.add (local.get $xq) (local.get $k))))
                    (local.set $t0 (i32.add (local.get $t0) (i32.mul (local.get $xv) (call $wval (local.get $kind) (local.get $p0) (local.get $k) (local.get $cbv)))))
                    (local.set $t1 (i32.add (local.get $t1) (i32.mul (local.get $xv) (call $wval (local.get $kind) (local.get $p1) (local.get $k) (local.get $cbv)))))
                    (local.set $t2 (i32.add (local.get $t2) (i32.mul (local.get $xv) (call $wval (local.get $kind) (local.get $p2) (local.get $k) (local.get $cbv)))))
                    (local.set $t3 (i32.add (local.get $t3) (i32.mul (local.get $xv) (call $wval (local.get $kind) (local.get $p3) (local.get $k) (local.get $cbv)))))
                    (local.set $k (i32.add (local.get $k) (i32.const 1)))
                    (br $tl)))
                  (local.set $isum (i32x4.add (local.get $isum)
                    (i32x4.replace_lane 3 (i32x4.replace_lane 2 (i32x4.replace_lane 1 (i32x4.splat (local.get $t0)) (local.get $t1)) (local.get $t2)) (local.get $t3))))))
                (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul (f32x4.convert_i32x4_s (local.get $isum))
                  (v128.load32_splat (i32.add (local.get $xs) (i32.shl (i32.div_u (local.get $a0) (local.get $ga)) (i32.const 2)))))))
                (local.set $a0 (i32.add (local.get $a0) (local.get $ga)))
                (br $al)))
            ;; the four rows' scales of group g
            (local.set $sp (i32.add (local.get $ws) (i32.shl (i32.add (i32.mul (local.get $r) (local.get $gpr)) (local.get $g)) (i32.const 2))))
            (local.set $val (f32x4.add (local.get $val) (f32x4.mul (local.get $acc)
              (f32x4.replace_lane 3 (f32x4.replace_lane 2 (f32x4.replace_lane 1 (v128.load32_splat (local.get $sp))
                (f32.load (i32.add (local.get $sp) (i32.shl (local.get $gpr) (i32.const 2)))))
                (f32.load (i32.add (local.get $sp) (i32.shl (local.get $gpr) (i32.const 3)))))
                (f32.load (i32.add (local.get $sp) (i32.mul (local.get $gpr) (i32.const 12))))))))
            (local.set $g (i32.add (local.get $g) (i32.const 1)))
            (local.set $j0 (i32.add (local.get $j0) (local.get $gw)))
            (br $gl)))
        (v128.store (i32.add (local.get $out) (i32.shl (local.get $r) (i32.const 2))) (local.get $val))
        (local.set $r (i32.add (local.get $r) (i32.const 4)))
        (br $rl)))
    (local.get $r))

;; int8 matrix-vector products in two variants that give the same bits
  ;; (integer sums): "matvec_q8" takes 8 values a step with v128.load8x8_s,
  ;; fastest in V8 (Chromium, workerd); "matvec_q8_wide" takes 32, then 16,
  ;; with full loads widened by extend_low/high, fastest under wazero, whose
  ;; host (wasm/simd/run.go) binds Go's matvec_q8 import to it.
  (func (export "matvec_q8")
    (param $out i32) (param $w i32) (param $ws i32) (param $xq i32) (param $xs i32)
    (param $n i32) (param $gw i32) (param $ga i32) (param $rows i32)
    (call $matvec_q8 (i32.const 1) (local.get $out) (local.get $w) (local.get $ws) (local.get $xq) (local.get $xs)
      (local.get $n) (local.get $gw) (local.get $ga) (local.get $rows)))

  (func (export "matvec_q8_wide")
    (param $out i32) (param $w i32) (param $ws i32) (param $xq i32) (param $xs i32)
    (param $n i32) (param $gw i32) (param $ga i32) (param $rows i32)
    (call $matvec_q8 (i32.const 0) (local.get $out) (local.get $w) (local.get $ws) (local.get $xq) (local.get $xs)
      (local.get $n) (local.get $gw) (local.get $ga) (local.get $rows)))

  ;; $short selects the 8-values-a-step loop (passed to matvec_qx4 as $cb,
  ;; which int8 rows do not use otherwise).
  (func $matvec_q8 (param $short i32)
    (param $out i32) (param $w i32) (param $ws i32) (param $xq i32) (param $xs i32)
    (param $n i32) (param $gw i32) (param $ga i32) (param $rows i32)
    (local $done i32)
    (local.set $done (call $matvec_qx4 (i32.const 0) (local.get $out) (local.get $w) (local.get $short) (local.get $ws)
      (local.get $xq) (local.get $xs) (local.get $n) (local.get $gw) (local.get $ga) (local.get $rows)))
    (call $matvec_q (i32.const 0)
      (i32.add (local.get $out) (i32.shl (local.get $done) (i32.const 2)))
      (i32.add (local.get $w) (i32.mul (local.get $done) (local.get $n)))
      (i32.const 0)
      (i32.add (local.get $ws) (i32.shl (i32.mul (local.get $done)
        (i32.div_u (i32.sub (i32.add (local.get $n) (local.get $gw)) (i32.const 1)) (local.get $gw))) (i32.const 2)))
      (local.get $xq) (local.get $xs) (local.get $n) (local.get $gw) (local.get $ga) (i32.sub (local.get $rows) (local.get $done))))

  (func (export "matvec_q4")
    (param $out i32) (param $w i32) (param $cb i32) (param $ws i32) (param $xq i32) (param $xs i32)
    (param $n i32) (param $gw i32) (param $ga i32) (param $rows i32)
    (local $done i32)
    (local.set $done (call $matvec_qx4 (i32.const 1) (local.get $out) (local.get $w) (local.get $cb) (local.get $ws)
      (local.get $xq) (local.get $xs) (local.get $n) (local.get $gw) (local.get $ga) (local.get $rows)))
    (call $matvec_q (i32.const 1)
      (i32.add (local.get $out) (i32.shl (local.get $done) (i32.const 2)))
      (i32.add (local.get $w) (i32.mul (local.get $done) (i32.shr_u (i32.add (local.get $n) (i32.const 1)) (i32.const 1))))
      (local.get $cb)
      (i32.add (local.get $ws) (i32.shl (i32.mul (local.get $done)
        (i32.div_u (i32.sub (i32.add (local.get $n) (local.get $gw)) (i32.const 1)) (local.get $gw))) (i32.const 2)))
      (local.get $xq) (local.get $xs) (local.get $n) (local.get $gw) (local.get $ga) (i32.sub (local.get $rows) (local.get $done))))
)
