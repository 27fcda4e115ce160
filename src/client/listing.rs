//! One line of text per cron job or memory, as `spacebot cron list` and `spacebot memory`
//! print them.

use serde_json::Value;

/// One line per job: id, schedule and zone, target, next run or why it is disabled, and how
/// its last run went.
pub fn describe_job(job: &Value) -> String {
    let text = |key: &str| job[key].as_str().unwrap_or_default().to_string();
    let schedule = match job["cron"].as_str() {
        Some(expression) => format!("cron \"{expression}\""),
        None => format!("every {}s", job["every_secs"]),
    };
    let mut line = format!("{}  {schedule} ({})", text("id"), text("zone"));
    if let Some(hours) = job["active_hours"].as_str() {
        line.push_str(&format!(" {hours}"));
    }
    match job["delivery_target"].as_str() {
        Some(target) => line.push_str(&format!("  -> {target}")),
        None => line.push_str("  (no target)"),
    }
    if job["enabled"].as_bool() == Some(true) {
        line.push_str(&format!(
            "  next {}",
            job["next_run"].as_str().unwrap_or("-")
        ));
    } else {
        match job["disabled_reason"].as_str() {
            Some(reason) => line.push_str(&format!("  DISABLED: {reason}")),
            None => line.push_str("  disabled"),
        }
    }
    let last = &job["last_execution"];
    if let Some(state) = last["state"].as_str() {
        line.push_str(&format!("  last: {state}"));
        if last["delivered"].as_bool() == Some(true) {
            line.push_str(" (delivered)");
        }
        if let Some(error) = last["error"].as_str() {
            line.push_str(&format!(" ({error})"));
        }
    }
    line
}

/// One line per memory: id, type, importance and content.
pub fn describe_memory(memory: &Value) -> String {
    format!(
        "{}  [{} {:.2}]  {}",
        memory["id"].as_str().unwrap_or("?"),
        memory["memory_type"].as_str().unwrap_or("?"),
        memory["importance"].as_f64().unwrap_or(0.0),
        memory["content"].as_str().unwrap_or(""),
    )
}
