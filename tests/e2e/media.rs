//! Files people send: kept in the workspace with their message, images shown to models that
//! read them (OpenAI and Anthropic formats; a GIF as its first frame), scaled down when large,
//! described to text-only models, and only as their line in later turns; oversized files
//! refused clearly.

use std::path::Path;

use base64::Engine;
use serde_json::{Value, json};

use crate::fake_llm::{FakeLlm, Scripted};
use crate::harness::{TestDaemon, anthropic_config_for, config_for, reply};

/// A PNG of one colour.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_pixel(width, height, image::Rgb([10, 200, 90]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut bytes, image::ImageFormat::Png)
        .expect("encode");
    bytes.into_inner()
}

pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Sends a portal message with files and waits for the answer.
async fn send_files(
    daemon: &TestDaemon,
    conversation: &str,
    content: &str,
    files: &[(&str, &[u8])],
) -> reqwest::Response {
    let attachments: Vec<Value> = files
        .iter()
        .map(|(name, bytes)| json!({"name": name, "data": base64(bytes)}))
        .collect();
    daemon
        .http
        .post(daemon.url("/api/agents/main/messages"))
        .json(&json!({
            "content": content, "conversation": conversation, "attachments": attachments,
            "wait": true, "timeout_secs": 30,
        }))
        .send()
        .await
        .expect("request")
}

/// The image parts of a request's last user message, OpenAI or Anthropic shape.
pub fn image_parts(request: &Value) -> Vec<Value> {
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    messages
        .iter()
        .rev()
        .find(|message| message["role"] == "user")
        .and_then(|message| message["content"].as_array().cloned())
        .unwrap_or_default()
        .into_iter()
        .filter(|part| part["type"] == "image_url" || part["type"] == "image")
        .collect()
}

/// Every image part anywhere in a request.
fn all_image_parts(request: &Value) -> usize {
    request["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|message| message["content"].as_array().cloned().unwrap_or_default())
        .filter(|part| part["type"] == "image_url" || part["type"] == "image")
        .count()
}

/// The bytes of an OpenAI `image_url` data URL.
pub fn data_url_bytes(part: &Value) -> (String, Vec<u8>) {
    let url = part["image_url"]["url"].as_str().expect("url");
    let (header, data) = url
        .strip_prefix("data:")
        .and_then(|rest| rest.split_once(";base64,"))
        .expect("a base64 data URL");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("base64");
    (header.to_string(), bytes)
}

/// The one file kept under `attachments/{folder}` of the main agent's workspace.
pub fn kept_files(home: &Path, folder: &str) -> Vec<(String, Vec<u8>)> {
    let root = home.join("agents/main/workspace/attachments").join(folder);
    let mut files = Vec::new();
    for message in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(message.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let relative = file
                .path()
                .strip_prefix(home.join("agents/main/workspace"))
                .expect("inside")
                .display()
                .to_string();
            files.push((relative, std::fs::read(file.path()).expect("read")));
        }
    }
    files
}

#[tokio::test]
async fn a_photo_reaches_the_model_as_an_image_and_is_kept_in_the_workspace() {
    let llm = FakeLlm::start().await;
    llm.push(reply("A green square."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let photo = png(20, 10);

    let response = send_files(&daemon, "pics", "what is this?", &[("square.png", &photo)]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["reply"], "A green square.");

    let kept = kept_files(home.path(), "portal_pics");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].0.ends_with("/square.png"), "{}", kept[0].0);
    assert_eq!(kept[0].1, photo);

    let request = &llm.requests()[0];
    let images = image_parts(request);
    assert_eq!(images.len(), 1, "{request}");
    let (media_type, bytes) = data_url_bytes(&images[0]);
    assert_eq!(media_type, "image/png");
    assert_eq!(bytes, photo, "a small image is sent as it is");
    let text = FakeLlm::last_user_text(request);
    assert!(text.contains("what is this?"), "{text}");
    assert!(
        text.contains(&kept[0].0),
        "the model is told where it is: {text}"
    );
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_message_of_only_a_photo_is_a_message() {
    let llm = FakeLlm::start().await;
    llm.push(reply("Nice photo."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    let response = send_files(&daemon, "bare", "", &[("IMG_0001.jpg", &png(8, 8))]).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["reply"], "Nice photo.");
    let request = &llm.requests()[0];
    assert_eq!(image_parts(request).len(), 1, "{request}");
    let text = FakeLlm::last_user_text(request);
    assert!(text.contains("IMG_0001.jpg"), "{text}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_anthropic_model_gets_the_image_in_its_own_format() {
    let llm = FakeLlm::start().await;
    llm.push(reply("I see it."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &anthropic_config_for(&llm)).await;
    let photo = png(12, 12);

    let response = send_files(&daemon, "claude", "look", &[("dot.png", &photo)]).await;
    assert_eq!(response.status(), 200);
    let request = &llm.requests()[0];
    let images = image_parts(request);
    assert_eq!(images.len(), 1, "{request}");
    assert_eq!(images[0]["source"]["type"], "base64");
    assert_eq!(images[0]["source"]["media_type"], "image/png");
    let data = images[0]["source"]["data"].as_str().expect("data");
    assert_eq!(data, base64(&photo));
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_large_image_is_scaled_to_the_configured_side() {
    let llm = FakeLlm::start().await;
    llm.push(reply("Wide."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!("{}\n[media]\nimage_max_side = 100\n", config_for(&llm));
    let daemon = TestDaemon::start(home.path(), &config).await;
    let photo = png(800, 200);

    let response = send_files(&daemon, "wide", "", &[("wide.png", &photo)]).await;
    assert_eq!(response.status(), 200);
    let images = image_parts(&llm.requests()[0]);
    assert_eq!(images.len(), 1);
    let (_, bytes) = data_url_bytes(&images[0]);
    let shown = image::load_from_memory(&bytes).expect("an image");
    assert_eq!((shown.width(), shown.height()), (100, 25));
    // The workspace keeps the original.
    assert_eq!(kept_files(home.path(), "portal_wide")[0].1, photo);
    daemon.shutdown().await;
}

/// An animated GIF of `width` × `height` whose frames are filled with these colours, in order.
pub fn animated_gif(width: u16, height: u16, frames: &[[u8; 3]]) -> Vec<u8> {
    let mut bytes = b"GIF89a".to_vec();
    bytes.extend(width.to_le_bytes());
    bytes.extend(height.to_le_bytes());
    // A global palette of 4 colours: the frames' colours, then black.
    bytes.extend([0x81, 0, 0]);
    for index in 0..4 {
        bytes.extend(frames.get(index).copied().unwrap_or([0, 0, 0]));
    }
    let pixels = usize::from(width) * usize::from(height);
    for index in 0..frames.len() {
        bytes.extend([0x21, 0xF9, 4, 0, 10, 0, 0, 0]);
        bytes.push(0x2C);
        bytes.extend([0, 0, 0, 0]);
        bytes.extend(width.to_le_bytes());
        bytes.extend(height.to_le_bytes());
        bytes.extend([0, 2]);
        let data = weezl::encode::Encoder::new(weezl::BitOrder::Lsb, 2)
            .encode(&vec![index as u8; pixels])
            .expect("lzw");
        for block in data.chunks(255) {
            bytes.push(block.len() as u8);
            bytes.extend(block);
        }
        bytes.push(0);
    }
    bytes.push(0x3B);
    bytes
}

#[tokio::test]
async fn an_animated_gif_reaches_the_model_as_the_png_of_its_first_frame_scaled_to_the_limit() {
    let llm = FakeLlm::start().await;
    llm.push(reply("A red banner."));
    llm.push(reply("A small blue square."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!("{}\n[media]\nimage_max_side = 100\n", config_for(&llm));
    let daemon = TestDaemon::start(home.path(), &config).await;
    let banner = animated_gif(400, 100, &[[220, 20, 20], [20, 20, 220]]);

    let response = send_files(&daemon, "gif", "what is this?", &[("banner.gif", &banner)]).await;
    assert_eq!(response.status(), 200);
    let images = image_parts(&llm.requests()[0]);
    assert_eq!(images.len(), 1, "a GIF is shown, not only described");
    let (media_type, bytes) = data_url_bytes(&images[0]);
    assert_eq!(media_type, "image/png");
    let shown = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .expect("a PNG")
        .to_rgba8();
    assert_eq!(shown.dimensions(), (100, 25), "scaled like any image");
    assert_eq!(
        shown.get_pixel(50, 12).0,
        [220, 20, 20, 255],
        "the first frame"
    );
    assert_eq!(kept_files(home.path(), "portal_gif")[0].1, banner);

    let square = animated_gif(10, 10, &[[20, 20, 220], [220, 20, 20]]);
    send_files(&daemon, "gif", "", &[("square.gif", &square)]).await;
    let images = image_parts(&llm.requests()[1]);
    assert_eq!(images.len(), 1);
    let shown = image::load_from_memory(&data_url_bytes(&images[0]).1)
        .expect("an image")
        .to_rgba8();
    assert_eq!(shown.dimensions(), (10, 10), "a small GIF keeps its size");
    assert_eq!(shown.get_pixel(0, 0).0, [20, 20, 220, 255]);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_text_only_model_is_told_what_was_attached_and_where() {
    let llm = FakeLlm::start().await;
    llm.push(reply("I cannot see images, but a worker can open it."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!(
        "{}\n[llm.models.\"fake/fake-model\"]\nvision = false\n",
        config_for(&llm)
    );
    let daemon = TestDaemon::start(home.path(), &config).await;

    let response = send_files(&daemon, "blind", "here", &[("chart.png", &png(10, 10))]).await;
    assert_eq!(response.status(), 200);
    let request = &llm.requests()[0];
    assert_eq!(all_image_parts(request), 0, "{request}");
    let text = FakeLlm::last_user_text(request);
    let path = &kept_files(home.path(), "portal_blind")[0].0;
    assert!(text.contains("chart.png"), "{text}");
    assert!(text.contains(path.as_str()), "{text}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn older_images_become_their_line_in_history() {
    let llm = FakeLlm::start().await;
    llm.push(reply("A photo."));
    llm.push(reply("Still the photo."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;

    let first = send_files(&daemon, "history", "first", &[("one.png", &png(10, 10))]).await;
    assert_eq!(first.status(), 200);
    daemon.send("history", "and now?").await;
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(all_image_parts(&requests[0]), 1);
    assert_eq!(all_image_parts(&requests[1]), 0, "{}", requests[1]);
    let history = requests[1]["messages"].to_string();
    assert!(history.contains("one.png"), "the line stays: {history}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn an_oversized_upload_is_refused_with_a_clear_error() {
    let llm = FakeLlm::start().await;
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!("{}\n[media]\nmax_file_mb = 1\n", config_for(&llm));
    let daemon = TestDaemon::start(home.path(), &config).await;
    let big = vec![7u8; (1 << 20) + 10];

    let response = send_files(&daemon, "big", "take this", &[("big.bin", &big)]).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.expect("json");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("big.bin") && message.contains("1.0 MB"),
        "{message}"
    );
    assert_eq!(llm.request_count(), 0);
    daemon.shutdown().await;
}

#[tokio::test]
async fn chat_completions_image_url_data_urls_reach_the_model() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text("A tiny image."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let photo = png(6, 6);
    let url = format!("data:image/png;base64,{}", base64(&photo));

    let response = daemon
        .http
        .post(daemon.url("/v1/chat/completions"))
        .json(&json!({"model": "spacebot/main", "user": "vision", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "describe"},
            {"type": "image_url", "image_url": {"url": url}},
        ]}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "A tiny image.");
    let images = image_parts(&llm.requests()[0]);
    assert_eq!(images.len(), 1);
    assert_eq!(data_url_bytes(&images[0]).1, photo);

    // Only data URLs: the daemon fetches nothing from the web for a client.
    let remote = daemon
        .http
        .post(daemon.url("/v1/chat/completions"))
        .json(
            &json!({"model": "spacebot/main", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/cat.png"}},
            ]}]}),
        )
        .send()
        .await
        .expect("request");
    assert_eq!(remote.status(), 400);
    daemon.shutdown().await;
}

/// OpenAI's `file` parts (what the dashboard's chat sends): a file alone is a message, its
/// name is kept, a document's text reaches the model, a picture is an image; a file over
/// `[media] max_file_mb` is a 413 that says the limit, and `/api/status` tells clients it.
#[tokio::test]
async fn chat_completions_file_parts_reach_the_model_under_their_names() {
    let llm = FakeLlm::start().await;
    llm.push(Scripted::text("Read both."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm) + "\n[media]\nmax_file_mb = 1\n";
    let daemon = TestDaemon::start(home.path(), &config).await;
    let photo = png(6, 6);
    let file_part = |name: &str, media_type: &str, bytes: &[u8]| {
        json!({"type": "file", "file": {"filename": name,
            "file_data": format!("data:{media_type};base64,{}", base64(bytes))}})
    };
    let response = daemon
        .http
        .post(daemon.url("/v1/chat/completions"))
        .json(&json!({"model": "spacebot/main", "user": "files", "messages": [{"role": "user", "content": [
            file_part("dot.png", "image/png", &photo),
            file_part("recipe.md", "application/octet-stream", b"Bake at 180 degrees."),
        ]}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 200);
    let request = &llm.requests()[0];
    let images = image_parts(request);
    assert_eq!(images.len(), 1, "{request}");
    assert_eq!(data_url_bytes(&images[0]).1, photo);
    let text = FakeLlm::last_user_text(request);
    assert!(
        text.contains("`recipe.md`") && text.contains("Bake at 180 degrees."),
        "{text}"
    );
    let kept: Vec<String> = kept_files(home.path(), "portal_files")
        .into_iter()
        .map(|(path, _)| path)
        .collect();
    assert!(
        kept.iter().any(|path| path.ends_with("/dot.png"))
            && kept.iter().any(|path| path.ends_with("/recipe.md")),
        "{kept:?}"
    );

    let status = daemon.get("/api/status").await;
    assert_eq!(status["media"]["max_file_bytes"], 1 << 20, "{status}");
    let too_large = daemon
        .http
        .post(daemon.url("/v1/chat/completions"))
        .json(&json!({"model": "spacebot/main", "user": "files", "messages": [{"role": "user", "content": [
            file_part("big.bin", "application/octet-stream", &vec![1u8; (1 << 20) + 10]),
        ]}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(too_large.status(), 413);
    let body = too_large.text().await.expect("body");
    assert!(
        body.contains("big.bin") && body.contains("1.0 MB"),
        "{body}"
    );
    assert_eq!(llm.request_count(), 1);
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_restart_between_receiving_a_photo_and_answering_it_answers_once_with_the_photo() {
    let llm = FakeLlm::start().await;
    // The first attempt hangs past the shutdown deadline, so the turn is cut off.
    llm.push(Scripted::Hang);
    let home = tempfile::tempdir().expect("tempdir");
    let config = config_for(&llm);
    let photo = png(9, 9);

    let daemon = TestDaemon::start(home.path(), &config).await;
    let queued = daemon
        .http
        .post(daemon.url("/api/agents/main/messages"))
        .json(&json!({"conversation": "restart", "attachments": [{"name": "late.png", "data": base64(&photo)}]}))
        .send()
        .await
        .expect("request");
    assert_eq!(queued.status(), 202);
    llm.wait_for_requests(1, std::time::Duration::from_secs(5))
        .await;
    daemon.shutdown().await;

    llm.push(reply("Got your photo."));
    let daemon = TestDaemon::start(home.path(), &config).await;
    let transcript = daemon
        .wait_for_messages("restart", |messages| {
            !crate::harness::replies(messages).is_empty()
        })
        .await;
    assert_eq!(
        crate::harness::replies(&transcript),
        vec!["Got your photo."]
    );
    let requests = llm.requests();
    assert_eq!(requests.len(), 2);
    let images = image_parts(&requests[1]);
    assert_eq!(images.len(), 1, "the photo is shown after the restart");
    assert_eq!(data_url_bytes(&images[0]).1, photo);
    daemon.shutdown().await;
    assert_eq!(llm.request_count(), 2, "answered once");
}

/// A one-page PDF whose text layer says `text`.
pub fn pdf_with_text(text: &str) -> Vec<u8> {
    use lopdf::content::{Content, Operation};
    use lopdf::{Document, Object, Stream, dictionary};
    let mut document = Document::with_version("1.5");
    let pages_id = document.new_object_id();
    let font_id = document.add_object(dictionary! {
        "Type" => "Font", "Subtype" => "Type1", "BaseFont" => "Helvetica",
        "Encoding" => "WinAnsiEncoding",
    });
    let resources_id = document.add_object(dictionary! {"Font" => dictionary! {"F1" => font_id}});
    let content = Content {
        operations: vec![
            Operation::new("BT", vec![]),
            Operation::new("Tf", vec!["F1".into(), 12.into()]),
            Operation::new("Td", vec![72.into(), 720.into()]),
            Operation::new("Tj", vec![Object::string_literal(text)]),
            Operation::new("ET", vec![]),
        ],
    };
    let content_id = document.add_object(Stream::new(
        dictionary! {},
        content.encode().expect("encode"),
    ));
    let page_id = document.add_object(dictionary! {
        "Type" => "Page", "Parent" => pages_id, "Contents" => content_id,
    });
    document.objects.insert(
        pages_id,
        Object::Dictionary(dictionary! {
            "Type" => "Pages", "Kids" => vec![page_id.into()], "Count" => 1,
            "Resources" => resources_id,
            "MediaBox" => vec![0.into(), 0.into(), 595.into(), 842.into()],
        }),
    );
    let catalog_id = document.add_object(dictionary! {"Type" => "Catalog", "Pages" => pages_id});
    document.trailer.set("Root", catalog_id);
    let mut bytes = Vec::new();
    document.save_to(&mut bytes).expect("save");
    bytes
}

#[tokio::test]
async fn a_pdf_text_reaches_the_turn_and_stays_readable_in_the_workspace() {
    let llm = FakeLlm::start().await;
    llm.push(reply("Revenue grew 42 percent."));
    let home = tempfile::tempdir().expect("tempdir");
    let daemon = TestDaemon::start(home.path(), &config_for(&llm)).await;
    let pdf = pdf_with_text("Quarterly revenue grew 42 percent");

    let response = send_files(&daemon, "docs", "summarise", &[("q3.pdf", &pdf)]).await;
    assert_eq!(response.status(), 200);
    let text = FakeLlm::last_user_text(&llm.requests()[0]);
    assert!(text.contains("Quarterly revenue grew 42 percent"), "{text}");
    assert_eq!(all_image_parts(&llm.requests()[0]), 0);
    // file_read reads text: the PDF's text is kept beside it.
    let kept = kept_files(home.path(), "portal_docs");
    let sidecar = kept
        .iter()
        .find(|(path, _)| path.ends_with("q3.pdf.txt"))
        .expect("the text beside the PDF");
    assert!(String::from_utf8_lossy(&sidecar.1).contains("Quarterly revenue grew 42 percent"));
    assert!(text.contains(&sidecar.0), "the model is told where: {text}");
    daemon.shutdown().await;
}

#[tokio::test]
async fn a_long_text_file_is_summarised_up_to_the_limit() {
    let llm = FakeLlm::start().await;
    llm.push(reply("A long list."));
    let home = tempfile::tempdir().expect("tempdir");
    let config = format!("{}\n[media]\ndocument_chars = 100\n", config_for(&llm));
    let daemon = TestDaemon::start(home.path(), &config).await;
    let csv: String = (0..200)
        .map(|row| format!("row{row},value{row}\n"))
        .collect();

    let response = send_files(&daemon, "csv", "", &[("data.csv", csv.as_bytes())]).await;
    assert_eq!(response.status(), 200);
    let text = FakeLlm::last_user_text(&llm.requests()[0]);
    assert!(text.contains("row0,value0"), "{text}");
    assert!(!text.contains("row199"), "cut at the limit: {text}");
    assert!(
        text.contains("file_read"),
        "told how to read the rest: {text}"
    );
    daemon.shutdown().await;
}
