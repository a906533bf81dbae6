//! The learned model: one logistic-regression weight per hashed feature, one per signal tag, a
//! bias, and the default thresholds chosen on a validation slice of TRAIN. The score is the
//! model's log-odds of spam, so every reason's weight is an additive share of the score.
//!
//! File format (little endian): magic `OGSPAM01`, dim_bits u8, suspicious f64, spam f64, bias
//! f32, tag count u16 then (len u8, tag, weight f32)*, weight scale f32, entry count u32, then
//! per non-zero weight a LEB128 index delta and an i16 quantised weight; last an xxh3 checksum.
//! Quantisation keeps the file ~3 bytes per non-zero weight and makes it byte-identical across
//! runs of the same training.

use xxhash_rust::xxh3::xxh3_64_with_seed;

use crate::error::SpamError;
use crate::features::{DIM, DIM_BITS, SEED};
use crate::signals::TAGS;

const MAGIC: &[u8; 8] = b"OGSPAM01";

#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    pub bias: f32,
    /// Dense, `DIM` long (4 MiB in memory).
    pub weights: Vec<f32>,
    /// Aligned with `signals::TAGS`.
    pub tag_weights: Vec<f32>,
    pub suspicious: f64,
    pub spam: f64,
}

impl Model {
    /// Quantises weights the way `to_bytes` stores them, so an in-memory model scores exactly
    /// like its file.
    pub fn quantised(mut self) -> Model {
        let scale = weight_scale(&self.weights);
        for w in &mut self.weights {
            *w = dequant(quant(*w, scale), scale);
        }
        self
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 << 20);
        out.extend_from_slice(MAGIC);
        out.push(DIM_BITS as u8);
        out.extend_from_slice(&self.suspicious.to_le_bytes());
        out.extend_from_slice(&self.spam.to_le_bytes());
        out.extend_from_slice(&self.bias.to_le_bytes());
        out.extend_from_slice(&(TAGS.len() as u16).to_le_bytes());
        for (tag, w) in TAGS.iter().zip(&self.tag_weights) {
            out.push(tag.len() as u8);
            out.extend_from_slice(tag.as_bytes());
            out.extend_from_slice(&w.to_le_bytes());
        }
        let scale = weight_scale(&self.weights);
        out.extend_from_slice(&scale.to_le_bytes());
        let entries: Vec<(usize, i16)> = self
            .weights
            .iter()
            .enumerate()
            .map(|(i, w)| (i, quant(*w, scale)))
            .filter(|(_, q)| *q != 0)
            .collect();
        out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
        let mut prev = 0usize;
        for (i, q) in entries {
            write_varint(&mut out, (i - prev) as u64);
            out.extend_from_slice(&q.to_le_bytes());
            prev = i;
        }
        let sum = xxh3_64_with_seed(&out, SEED);
        out.extend_from_slice(&sum.to_le_bytes());
        out
    }

    pub fn from_bytes(b: &[u8]) -> Result<Model, SpamError> {
        if b.len() < MAGIC.len() + 8 || &b[..8] != MAGIC {
            return Err(SpamError::BadModel("bad magic"));
        }
        let (body, sum) = b.split_at(b.len() - 8);
        let sum = u64::from_le_bytes(sum.try_into().map_err(|_| SpamError::BadModel("short"))?);
        if xxh3_64_with_seed(body, SEED) != sum {
            return Err(SpamError::BadModel("checksum mismatch"));
        }
        let mut r = Reader { b: body, pos: 8 };
        if r.u8()? as u32 != DIM_BITS {
            return Err(SpamError::BadModel("feature space size differs"));
        }
        let suspicious = f64::from_le_bytes(r.take::<8>()?);
        let spam = f64::from_le_bytes(r.take::<8>()?);
        let bias = f32::from_le_bytes(r.take::<4>()?);
        let mut tag_weights = vec![0.0f32; TAGS.len()];
        let ntags = u16::from_le_bytes(r.take::<2>()?);
        for _ in 0..ntags {
            let len = r.u8()? as usize;
            let tag = r.slice(len)?;
            let w = f32::from_le_bytes(r.take::<4>()?);
            if let Some(i) = std::str::from_utf8(tag)
                .ok()
                .and_then(crate::signals::tag_index)
            {
                tag_weights[i] = w;
            }
        }
        let scale = f32::from_le_bytes(r.take::<4>()?);
        let n = u32::from_le_bytes(r.take::<4>()?) as usize;
        if n > DIM {
            return Err(SpamError::BadModel("too many weights"));
        }
        let mut weights = vec![0.0f32; DIM];
        let mut idx = 0u64;
        for _ in 0..n {
            idx += r.varint()?;
            let q = i16::from_le_bytes(r.take::<2>()?);
            let slot = weights
                .get_mut(idx as usize)
                .ok_or(SpamError::BadModel("index out of range"))?;
            *slot = dequant(q, scale);
        }
        if !(suspicious.is_finite() && spam.is_finite() && bias.is_finite() && scale.is_finite()) {
            return Err(SpamError::BadModel("non-finite number"));
        }
        Ok(Model {
            bias,
            weights,
            tag_weights,
            suspicious,
            spam,
        })
    }
}

fn weight_scale(w: &[f32]) -> f32 {
    let max = w.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    if max == 0.0 { 1.0 } else { max / 32767.0 }
}

fn quant(w: f32, scale: f32) -> i16 {
    (w / scale).round().clamp(-32767.0, 32767.0) as i16
}

fn dequant(q: i16, scale: f32) -> f32 {
    f32::from(q) * scale
}

fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn slice(&mut self, n: usize) -> Result<&'a [u8], SpamError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.b.len())
            .ok_or(SpamError::BadModel("truncated"))?;
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SpamError> {
        self.slice(N)?
            .try_into()
            .map_err(|_| SpamError::BadModel("truncated"))
    }
    fn u8(&mut self) -> Result<u8, SpamError> {
        Ok(self.take::<1>()?[0])
    }
    fn varint(&mut self) -> Result<u64, SpamError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(SpamError::BadModel("bad varint"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_corruption() {
        let mut weights = vec![0.0f32; DIM];
        weights[5] = 1.5;
        weights[DIM - 1] = -0.25;
        let m = Model {
            bias: -0.5,
            weights,
            tag_weights: vec![0.3; TAGS.len()],
            suspicious: 1.0,
            spam: 4.0,
        }
        .quantised();
        let b = m.to_bytes();
        assert_eq!(Model::from_bytes(&b).unwrap(), m);
        let mut bad = b.clone();
        bad[20] ^= 1;
        assert!(Model::from_bytes(&bad).is_err());
        assert!(Model::from_bytes(&b[..10]).is_err());
        assert!(Model::from_bytes(b"").is_err());
    }
}
