//! The first frame of a GIF as a still picture, since vision models read PNG, JPEG and WebP
//! but no GIF: a small reader of the GIF container (screen, palettes, the first image and its
//! transparency) whose LZW data weezl decodes (the decoder lopdf already brings; `image`'s own
//! GIF support would add a second version of it). The frame is drawn on the logical screen,
//! transparent where it does not cover it. Decoding writes at most the frame's pixels, so a
//! small file cannot unpack into an unbounded one.

use ::image::{Rgba, RgbaImage};
use weezl::{BitOrder, LzwStatus, decode::Decoder};

/// The largest screen drawn (4096 × 4096): beyond that a GIF is not worth the memory.
const MAXIMUM_PIXELS: u64 = 1 << 24;

/// Why a GIF's first frame cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum GifError {
    #[error("the GIF ends before {0}")]
    Truncated(&'static str),
    #[error("not a GIF (no GIF87a or GIF89a header)")]
    NotGif,
    #[error("the GIF's screen of {width} × {height} is larger than 4096 × 4096 pixels")]
    TooLarge { width: u16, height: u16 },
    #[error("the GIF's first frame has no palette")]
    NoPalette,
    #[error("the GIF's LZW code size {0} is not between 2 and 8")]
    CodeSize(u8),
    #[error("the GIF's image data is corrupt: {0}")]
    Corrupt(String),
    #[error("the GIF has no frame")]
    NoFrame,
}

/// Reads bytes from the front of the file.
struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    fn take(&mut self, count: usize, what: &'static str) -> Result<&'a [u8], GifError> {
        if self.rest.len() < count {
            return Err(GifError::Truncated(what));
        }
        let (taken, rest) = self.rest.split_at(count);
        self.rest = rest;
        Ok(taken)
    }

    fn byte(&mut self, what: &'static str) -> Result<u8, GifError> {
        Ok(self.take(1, what)?[0])
    }

    fn word(&mut self, what: &'static str) -> Result<u16, GifError> {
        let bytes = self.take(2, what)?;
        Ok(u16::from_le_bytes([bytes[0], bytes[1]]))
    }

    /// A colour table of `2^(size + 1)` entries, when `present`.
    fn palette(
        &mut self,
        present: bool,
        size: u8,
        what: &'static str,
    ) -> Result<Option<&'a [u8]>, GifError> {
        if !present {
            return Ok(None);
        }
        self.take(3 << (size + 1), what).map(Some)
    }

    /// The data sub-blocks up to their terminator, joined (`keep`), or skipped.
    fn sub_blocks(&mut self, keep: bool, what: &'static str) -> Result<Vec<u8>, GifError> {
        let mut data = Vec::new();
        loop {
            let length = usize::from(self.byte(what)?);
            if length == 0 {
                return Ok(data);
            }
            let block = self.take(length, what)?;
            if keep {
                data.extend_from_slice(block);
            }
        }
    }
}

/// The first frame of the GIF `bytes`, on its logical screen.
pub fn first_frame(bytes: &[u8]) -> Result<RgbaImage, GifError> {
    let mut cursor = Cursor { rest: bytes };
    let header = cursor.take(6, "its header").map_err(|_| GifError::NotGif)?;
    if header != b"GIF87a" && header != b"GIF89a" {
        return Err(GifError::NotGif);
    }
    let width = cursor.word("its screen")?;
    let height = cursor.word("its screen")?;
    let packed = cursor.byte("its screen")?;
    cursor.take(2, "its screen")?;
    if u64::from(width) * u64::from(height) > MAXIMUM_PIXELS {
        return Err(GifError::TooLarge { width, height });
    }
    let global = cursor.palette(packed & 0x80 != 0, packed & 0x07, "its palette")?;
    let mut transparent = None;
    loop {
        match cursor.byte("its first frame")? {
            0x21 => {
                let label = cursor.byte("an extension")?;
                let data = cursor.sub_blocks(label == 0xF9, "an extension")?;
                // Graphic control: flags, delay (2 bytes), transparent colour index.
                if label == 0xF9 && data.len() >= 4 {
                    transparent = (data[0] & 0x01 != 0).then_some(data[3]);
                }
            }
            0x2C => {
                let frame = Frame::read(&mut cursor)?;
                // The frame's own size is allocated for its indices: a 65535 × 65535 frame
                // on a small screen must not cost 4 GiB.
                if frame.pixels() as u64 > MAXIMUM_PIXELS {
                    return Err(GifError::TooLarge {
                        width: frame.width,
                        height: frame.height,
                    });
                }
                let local = cursor.palette(
                    frame.packed & 0x80 != 0,
                    frame.packed & 0x07,
                    "its frame's palette",
                )?;
                let palette = local.or(global).ok_or(GifError::NoPalette)?;
                let code_size = cursor.byte("its image data")?;
                if !(2..=8).contains(&code_size) {
                    return Err(GifError::CodeSize(code_size));
                }
                let data = cursor.sub_blocks(true, "its image data")?;
                let indices = decode(&data, code_size, frame.pixels())?;
                let mut screen = RgbaImage::new(u32::from(width), u32::from(height));
                frame.draw(&indices, palette, transparent, &mut screen);
                return Ok(screen);
            }
            0x3B => return Err(GifError::NoFrame),
            other => {
                return Err(GifError::Corrupt(format!(
                    "unknown block {other:#04x} before the first frame"
                )));
            }
        }
    }
}

/// An image descriptor.
struct Frame {
    left: u16,
    top: u16,
    width: u16,
    height: u16,
    packed: u8,
}

impl Frame {
    fn read(cursor: &mut Cursor<'_>) -> Result<Frame, GifError> {
        Ok(Frame {
            left: cursor.word("its frame")?,
            top: cursor.word("its frame")?,
            width: cursor.word("its frame")?,
            height: cursor.word("its frame")?,
            packed: cursor.byte("its frame")?,
        })
    }

    fn pixels(&self) -> usize {
        usize::from(self.width) * usize::from(self.height)
    }

    /// The frame's rows in the order they are stored: as they are, or in the four passes of
    /// an interlaced GIF.
    fn row_order(&self) -> Vec<u16> {
        if self.packed & 0x40 == 0 {
            return (0..self.height).collect();
        }
        [(0, 8), (4, 8), (2, 4), (1, 2)]
            .into_iter()
            .flat_map(|(start, step)| (start..self.height).step_by(step))
            .collect()
    }

    /// Draws the colour `indices` on `screen`; transparent and missing pixels, and pixels
    /// off the screen, are left as they are.
    fn draw(
        &self,
        indices: &[u8],
        palette: &[u8],
        transparent: Option<u8>,
        screen: &mut RgbaImage,
    ) {
        let width = usize::from(self.width);
        if width == 0 {
            return;
        }
        for (stored, row) in indices.chunks(width).zip(self.row_order()) {
            let y = u32::from(self.top) + u32::from(row);
            for (column, index) in stored.iter().enumerate() {
                let x = u32::from(self.left) + column as u32;
                let start = usize::from(*index) * 3;
                if Some(*index) == transparent || x >= screen.width() || y >= screen.height() {
                    continue;
                }
                if let Some(colour) = palette.get(start..start + 3) {
                    screen.put_pixel(x, y, Rgba([colour[0], colour[1], colour[2], 255]));
                }
            }
        }
    }
}

/// The frame's colour indices, at most `pixels` of them.
fn decode(data: &[u8], code_size: u8, pixels: usize) -> Result<Vec<u8>, GifError> {
    let mut decoder = Decoder::new(BitOrder::Lsb, code_size);
    let mut indices = vec![0; pixels];
    let mut written = 0;
    let mut input = data;
    while written < pixels {
        let result = decoder.decode_bytes(input, &mut indices[written..]);
        written += result.consumed_out;
        input = &input[result.consumed_in..];
        match result.status {
            Ok(LzwStatus::Done) => break,
            Ok(LzwStatus::NoProgress) if input.is_empty() => break,
            Ok(LzwStatus::NoProgress) => {
                return Err(GifError::Corrupt("the LZW data makes no progress".into()));
            }
            Ok(LzwStatus::Ok) => {}
            Err(error) => return Err(GifError::Corrupt(error.to_string())),
        }
    }
    indices.truncate(written);
    Ok(indices)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A GIF89a of `width` × `height` whose first frame has these colour `indices` into a
    /// palette of red, green, blue, white, with index 3 transparent; a second frame follows.
    fn gif(width: u16, height: u16, indices: &[u8], interlaced: bool) -> Vec<u8> {
        let mut bytes = b"GIF89a".to_vec();
        bytes.extend(width.to_le_bytes());
        bytes.extend(height.to_le_bytes());
        bytes.extend([0x81, 0, 0]);
        bytes.extend([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255]);
        bytes.extend([0x21, 0xF9, 4, 0x01, 10, 0, 3, 0]);
        for _ in 0..2 {
            bytes.push(0x2C);
            bytes.extend([0, 0, 0, 0]);
            bytes.extend(width.to_le_bytes());
            bytes.extend(height.to_le_bytes());
            bytes.push(if interlaced { 0x40 } else { 0 });
            bytes.push(2);
            let data = weezl::encode::Encoder::new(BitOrder::Lsb, 2)
                .encode(indices)
                .expect("encode");
            for block in data.chunks(255) {
                bytes.push(block.len() as u8);
                bytes.extend(block);
            }
            bytes.push(0);
        }
        bytes.push(0x3B);
        bytes
    }

    #[test]
    fn a_frame_larger_than_the_limit_is_refused_before_it_is_allocated() {
        let mut bytes = gif(2, 2, &[0, 1, 2, 3], false);
        // The image descriptor follows the header (13), palette (12) and graphic control (8).
        let descriptor = 13 + 12 + 8;
        assert_eq!(bytes[descriptor], 0x2C);
        bytes[descriptor + 5..descriptor + 9].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(
            first_frame(&bytes),
            Err(GifError::TooLarge {
                width: 65535,
                height: 65535
            })
        ));
    }

    #[test]
    fn the_first_frame_is_drawn_with_its_palette_and_transparency() {
        let frame = first_frame(&gif(2, 2, &[0, 1, 2, 3], false)).expect("frame");
        assert_eq!(frame.dimensions(), (2, 2));
        assert_eq!(frame.get_pixel(0, 0), &Rgba([255, 0, 0, 255]));
        assert_eq!(frame.get_pixel(1, 0), &Rgba([0, 255, 0, 255]));
        assert_eq!(frame.get_pixel(0, 1), &Rgba([0, 0, 255, 255]));
        assert_eq!(frame.get_pixel(1, 1), &Rgba([0, 0, 0, 0]));
    }

    #[test]
    fn interlaced_rows_land_where_they_belong() {
        // Rows stored in the order 0, 2, 1 for a 3-row interlaced frame.
        let frame = first_frame(&gif(1, 3, &[0, 2, 1], true)).expect("frame");
        assert_eq!(frame.get_pixel(0, 0), &Rgba([255, 0, 0, 255]));
        assert_eq!(frame.get_pixel(0, 1), &Rgba([0, 255, 0, 255]));
        assert_eq!(frame.get_pixel(0, 2), &Rgba([0, 0, 255, 255]));
    }

    #[test]
    fn what_is_no_whole_gif_is_an_error() {
        assert!(matches!(first_frame(b"PNG nothing"), Err(GifError::NotGif)));
        let whole = gif(2, 2, &[0, 1, 2, 3], false);
        assert!(first_frame(&whole[..20]).is_err());
        let mut huge = whole.clone();
        huge[6..10].copy_from_slice(&[0xFF, 0xFF, 0xFF, 0xFF]);
        assert!(matches!(first_frame(&huge), Err(GifError::TooLarge { .. })));
    }
}
