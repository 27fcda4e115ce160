//! Images for vision models: kept as sent when a model can read them as they are, else
//! decoded, scaled so the longer side fits the limit, and encoded again. A GIF becomes its
//! first frame (`gif.rs`), as PNG.

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader};

use super::MediaError;

/// An image ready for a model: the bytes and their MIME type (PNG, JPEG or WebP: formats
/// both OpenAI and Anthropic read, and the daemon can decode to scale).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedImage {
    pub bytes: Vec<u8>,
    pub media_type: &'static str,
    pub width: u32,
    pub height: u32,
}

/// Makes `bytes` (the image `name`) ready for a model: as it is when its format is one
/// models read and its longer side is at most `max_side`; otherwise scaled down to
/// `max_side` and encoded as JPEG (a photo) or PNG (anything else, a GIF's first frame
/// included).
pub fn prepare_image(name: &str, bytes: &[u8], max_side: u32) -> Result<PreparedImage, MediaError> {
    let error = |reason: String| MediaError::Image {
        name: name.to_string(),
        reason,
    };
    if bytes.starts_with(b"GIF8") {
        let frame = super::gif::first_frame(bytes).map_err(|source| error(source.to_string()))?;
        return scale_and_encode(DynamicImage::ImageRgba8(frame), false, max_side).map_err(error);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|source| error(source.to_string()))?;
    let format = reader
        .format()
        .ok_or_else(|| error("not an image format the daemon reads".to_string()))?;
    let (width, height) = reader
        .into_dimensions()
        .map_err(|source| error(source.to_string()))?;
    let readable = match format {
        ImageFormat::Png => Some("image/png"),
        ImageFormat::Jpeg => Some("image/jpeg"),
        ImageFormat::WebP => Some("image/webp"),
        _ => None,
    };
    if let Some(media_type) = readable
        && width.max(height) <= max_side
    {
        return Ok(PreparedImage {
            bytes: bytes.to_vec(),
            media_type,
            width,
            height,
        });
    }
    let decoded = image::load_from_memory_with_format(bytes, format)
        .map_err(|source| error(source.to_string()))?;
    scale_and_encode(decoded, format == ImageFormat::Jpeg, max_side).map_err(error)
}

/// `decoded` with its longer side at most `max_side`, as JPEG (a `photo`) or PNG.
fn scale_and_encode(
    decoded: DynamicImage,
    photo: bool,
    max_side: u32,
) -> Result<PreparedImage, String> {
    let (width, height) = (decoded.width(), decoded.height());
    let scaled = if width.max(height) > max_side {
        decoded.resize(max_side, max_side, image::imageops::FilterType::Triangle)
    } else {
        decoded
    };
    let mut encoded = Cursor::new(Vec::new());
    let media_type = if photo {
        scaled
            .to_rgb8()
            .write_to(&mut encoded, ImageFormat::Jpeg)
            .map_err(|source| source.to_string())?;
        "image/jpeg"
    } else {
        scaled
            .write_to(&mut encoded, ImageFormat::Png)
            .map_err(|source| source.to_string())?;
        "image/png"
    };
    Ok(PreparedImage {
        bytes: encoded.into_inner(),
        media_type,
        width: scaled.width(),
        height: scaled.height(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_pixel(width, height, image::Rgb([200, 40, 40]));
        let mut bytes = Cursor::new(Vec::new());
        image
            .write_to(&mut bytes, ImageFormat::Png)
            .expect("encode");
        bytes.into_inner()
    }

    #[test]
    fn a_small_image_is_sent_as_it_is() {
        let bytes = png(40, 30);
        let prepared = prepare_image("a.png", &bytes, 100).expect("prepare");
        assert_eq!(prepared.bytes, bytes);
        assert_eq!(prepared.media_type, "image/png");
    }

    #[test]
    fn a_large_image_is_scaled_to_the_limit_keeping_its_shape() {
        let prepared = prepare_image("big.png", &png(400, 100), 100).expect("prepare");
        assert_eq!((prepared.width, prepared.height), (100, 25));
        let decoded = image::load_from_memory(&prepared.bytes).expect("decode");
        assert_eq!((decoded.width(), decoded.height()), (100, 25));
    }

    #[test]
    fn something_that_is_no_image_is_an_error() {
        assert!(prepare_image("x.png", b"not an image", 100).is_err());
    }
}
