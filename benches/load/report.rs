//! Results: one TSV line per run, and `report`, which takes the median of the rounds
//! per scenario and target and writes the side-by-side table (Markdown) and a chart
//! (PNG) of latency and deliveries per second.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// One run's results, in column order.
pub struct Row(Vec<(&'static str, String)>);

impl Row {
    pub fn from_pairs(pairs: Vec<(&'static str, String)>) -> Self {
        Self(pairs)
    }

    pub fn pretty(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Appends a TSV line, with the header first when the file is new.
    pub fn append_to(&self, path: &str) -> std::io::Result<()> {
        let new = fs::metadata(path).map(|m| m.len() == 0).unwrap_or(true);
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        if new {
            let names: Vec<&str> = self.0.iter().map(|(k, _)| *k).collect();
            writeln!(file, "{}", names.join("\t"))?;
        }
        let values: Vec<&str> = self.0.iter().map(|(_, v)| v.as_str()).collect();
        writeln!(file, "{}", values.join("\t"))
    }
}

/// Medians per (scenario, target) and column; scenarios and targets in first-seen order.
struct Medians {
    scenarios: Vec<String>,
    targets: Vec<String>,
    values: BTreeMap<(String, String, String), f64>,
}

impl Medians {
    fn read(path: &str) -> Result<Self, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let mut lines = text.lines();
        let header: Vec<&str> = lines.next().ok_or("empty results")?.split('\t').collect();
        let mut samples: BTreeMap<(String, String, String), Vec<f64>> = BTreeMap::new();
        let (mut scenarios, mut targets) = (Vec::new(), Vec::new());
        for line in lines {
            let fields: Vec<&str> = line.split('\t').collect();
            let (scenario, target) = (fields[0].to_string(), fields[1].to_string());
            if !scenarios.contains(&scenario) {
                scenarios.push(scenario.clone());
            }
            if !targets.contains(&target) {
                targets.push(target.clone());
            }
            for (name, value) in header.iter().zip(&fields).skip(3) {
                if let Ok(v) = value.parse::<f64>() {
                    samples
                        .entry((scenario.clone(), target.clone(), name.to_string()))
                        .or_default()
                        .push(v);
                }
            }
        }
        let values = samples
            .into_iter()
            .map(|(key, mut v)| {
                v.sort_by(f64::total_cmp);
                let mid = v.len() / 2;
                let median = if v.len() % 2 == 1 {
                    v[mid]
                } else {
                    (v[mid - 1] + v[mid]) / 2.0
                };
                (key, median)
            })
            .collect();
        Ok(Self {
            scenarios,
            targets,
            values,
        })
    }

    fn get(&self, scenario: &str, target: &str, column: &str) -> Option<f64> {
        self.values
            .get(&(scenario.into(), target.into(), column.into()))
            .copied()
    }
}

/// The metrics shown for a scenario: (label, column, divisor for the unit).
fn metrics(scenario: &str) -> Vec<(&'static str, &'static str, f64)> {
    match scenario {
        "idle" => vec![
            ("connections held", "connected", 1.0),
            ("server RSS per connection (KiB)", "rss_per_conn_kib", 1.0),
        ],
        "connections" => vec![
            ("connections held", "connected", 1.0),
            ("subscribers reached by a publish", "received", 1.0),
            ("server RSS (MiB)", "server_rss_kib", 1024.0),
        ],
        "publish" => vec![
            ("accepted publishes/s", "pub_per_s", 1.0),
            ("publish ack p50 (ms)", "ack_p50_us", 1000.0),
            ("publish ack p99 (ms)", "ack_p99_us", 1000.0),
            ("end-to-end p99 (ms)", "p99_us", 1000.0),
            ("loss (%)", "loss_pct", 1.0),
            ("server CPU-s per M deliveries", "cpu_s_per_m", 1.0),
            ("generator CPU (% of a core)", "gen_cpu_pct", 1.0),
        ],
        _ => vec![
            ("deliveries/s", "deliveries_per_s", 1.0),
            ("loss (%)", "loss_pct", 1.0),
            ("latency p50 (ms)", "p50_us", 1000.0),
            ("latency p99 (ms)", "p99_us", 1000.0),
            ("server CPU-s per M deliveries", "cpu_s_per_m", 1.0),
            ("server RSS (MiB)", "server_rss_kib", 1024.0),
            ("generator CPU (% of a core)", "gen_cpu_pct", 1.0),
        ],
    }
}

fn number(v: f64) -> String {
    match v.abs() {
        a if a >= 100.0 => format!("{v:.0}"),
        a if a >= 1.0 => format!("{v:.2}"),
        _ => format!("{v:.3}"),
    }
}

fn markdown(m: &Medians) -> String {
    let subject = &m.targets[0];
    let others = &m.targets[1..];
    let mut out = format!("| scenario | metric | {} |", m.targets.join(" | "));
    for other in others {
        out.push_str(&format!(" {subject}/{other} |"));
    }
    out.push_str(&format!(
        "\n|---|---|{}\n",
        "---:|".repeat(m.targets.len() + others.len())
    ));
    for scenario in &m.scenarios {
        for (label, column, unit) in metrics(scenario) {
            let values: Vec<Option<f64>> = m
                .targets
                .iter()
                .map(|t| m.get(scenario, t, column).map(|v| v / unit))
                .collect();
            out.push_str(&format!("| {scenario} | {label} |"));
            for v in &values {
                out.push_str(&format!(
                    " {} |",
                    v.map(number).unwrap_or_else(|| "–".into())
                ));
            }
            for other in &values[1..] {
                let ratio = match (values[0], *other) {
                    (Some(a), Some(b)) if b != 0.0 => format!("{a_b:.2}", a_b = a / b),
                    _ => "–".into(),
                };
                out.push_str(&format!(" {ratio} |"));
            }
            out.push('\n');
        }
    }
    out
}

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const COLORS: [RGBColor; 4] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xd6, 0x27, 0x28),
];

/// The panels of the chart: (title, column, divisor for the unit). The fan-out
/// scenarios share one row; publishing, whose numbers are of another size, has its own.
type Panel = (&'static str, &'static str, f64);
const FANOUT_PANELS: [Panel; 3] = [
    ("fan-out latency p50 (ms)", "p50_us", 1000.0),
    ("fan-out latency p99 (ms)", "p99_us", 1000.0),
    ("deliveries/s", "deliveries_per_s", 1.0),
];
const PUBLISH_PANELS: [Panel; 3] = [
    ("publishes accepted/s", "pub_per_s", 1.0),
    ("publish ack p50 (ms)", "ack_p50_us", 1000.0),
    ("publish ack p99 (ms)", "ack_p99_us", 1000.0),
];

/// An axis label as a person writes it: `200 000`, `12.5`, `0.25`.
fn plain(v: f64) -> String {
    if v.abs() >= 1000.0 {
        let digits = format!("{:.0}", v.abs());
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(' ');
            }
            out.push(c);
        }
        return if v < 0.0 { format!("-{out}") } else { out };
    }
    let text = format!("{v:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Two rows of three panels, a bar per target per scenario: the fan-out scenarios'
/// latency and deliveries/s, then publishing's rate and acknowledgement latency.
fn chart(m: &Medians, path: &str) -> Result<(), String> {
    let font =
        fs::read(FONT).map_err(|e| format!("{FONT}: {e} (apt-get install fonts-dejavu-core)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Box::leak(font.into()))
        .map_err(|_| format!("{FONT}: not a font"))?;
    let delivered = |s: &&String| {
        m.targets
            .iter()
            .any(|t| m.get(s, t, "received").unwrap_or(0.0) > 0.0)
    };
    let fanout: Vec<&String> = m
        .scenarios
        .iter()
        .filter(delivered)
        .filter(|s| !matches!(s.as_str(), "connections" | "publish"))
        .collect();
    let publish: Vec<&String> = m.scenarios.iter().filter(|s| *s == "publish").collect();
    let rows: Vec<(&[&String], &[Panel; 3])> = [
        (fanout.as_slice(), &FANOUT_PANELS),
        (publish.as_slice(), &PUBLISH_PANELS),
    ]
    .into_iter()
    .filter(|(scenarios, _)| !scenarios.is_empty())
    .collect();
    let (width, height) = (1500u32, 440 * rows.len().max(1) as u32);
    let mut pixels = vec![0u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let areas = root.split_evenly((rows.len().max(1), 3));
        let panels = rows
            .iter()
            .flat_map(|(scenarios, panels)| panels.iter().map(move |p| (*scenarios, *p)));
        for (area, (scenarios, panel)) in areas.iter().zip(panels) {
            bars(m, &root, area, scenarios, panel)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    let file = fs::File::create(path).map_err(|e| format!("{path}: {e}"))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut w| w.write_image_data(&pixels))
        .map_err(|e| format!("{path}: {e}"))
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

/// One panel: `column` of each scenario, a bar per target, on its own axis.
fn bars(
    m: &Medians,
    root: &Area,
    area: &Area,
    scenarios: &[&String],
    (title, column, unit): Panel,
) -> Result<(), String> {
    let value = |s: &str, t: &str| m.get(s, t, column).unwrap_or(0.0) / unit;
    let top = scenarios
        .iter()
        .flat_map(|s| m.targets.iter().map(move |t| value(s, t)))
        .fold(0.0f64, f64::max)
        .max(1e-3)
        * 1.3; // room above the bars for the legend
    let n = scenarios.len().max(1) as f64;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..n, 0.0..top)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .max_light_lines(0)
        .x_labels(0)
        .y_labels(6)
        .y_label_formatter(&|v| plain(*v))
        .label_style(("sans-serif", 13))
        .draw()
        .map_err(|e| e.to_string())?;
    let width = 0.8 / m.targets.len() as f64;
    for (t, target) in m.targets.iter().enumerate() {
        let color = COLORS[t % COLORS.len()];
        chart
            .draw_series(scenarios.iter().enumerate().map(|(i, s)| {
                let x = i as f64 + 0.1 + t as f64 * width;
                Rectangle::new([(x, 0.0), (x + width, value(s, target))], color.filled())
            }))
            .map_err(|e| e.to_string())?
            .label(target.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 6), (x + 12, y + 6)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 13))
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()
        .map_err(|e| e.to_string())?;
    let style =
        TextStyle::from(("sans-serif", 13).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
    for (i, s) in scenarios.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        root.draw(&Text::new(s.as_str(), (x, y + 6), style.clone()))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `report --in FILE [--markdown FILE] [--png FILE]`: prints the table too.
pub fn main(args: &[String]) -> Result<(), String> {
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    let input = option("--in").ok_or("report needs --in FILE")?;
    let medians = Medians::read(input)?;
    let table = markdown(&medians);
    print!("{table}");
    if let Some(path) = option("--markdown") {
        fs::write(path, &table).map_err(|e| format!("{path}: {e}"))?;
    }
    if let Some(path) = option("--png") {
        chart(&medians, path)?;
    }
    Ok(())
}
