//! The text table printed by `Model.summary()`.

use crate::model::Model;
use crate::params::{ConvolutionMode, LayerParams, Pooling, PoolingType};
use crate::shape::Shape3;

fn shape(s: Shape3) -> String {
    format!("[{}, {}, {}]", s.height, s.width, s.channels)
}

fn pooling(p: &Pooling) -> Option<String> {
    let kind = match p.kind {
        PoolingType::NoPooling => return None,
        PoolingType::Max => "max",
        PoolingType::Average => "avg",
    };
    Some(if p.width < 0 {
        format!("{kind} pool global")
    } else {
        let stride = |s: i32, w: i32| if s < 0 { w } else { s };
        format!(
            "{kind} pool {}x{} /{}x{}",
            p.height,
            p.width,
            stride(p.stride_y, p.height),
            stride(p.stride_x, p.width)
        )
    })
}

fn mode(m: ConvolutionMode) -> &'static str {
    match m {
        ConvolutionMode::Valid => "valid",
        ConvolutionMode::Same => "same",
        ConvolutionMode::Full => "full",
    }
}

/// Whether any layer is fed by something else than the layer added just before it.
pub fn is_branched(model: &Model) -> bool {
    (1..model.layers().len()).any(|i| model.inbound(i) != [i - 1])
}

/// Indices of the layers the last layer's output does not depend on: `forward` does not compute
/// them (a dangling branch, for example after popping the Concat that joined it).
pub fn dangling_layers(model: &Model) -> Vec<usize> {
    let Some(last) = model.layers().len().checked_sub(1) else { return Vec::new() };
    let needed = model.needed_layers(last);
    (0..model.layers().len()).filter(|i| !needed.contains(i)).collect()
}

/// One row per layer: name (type), input and output shapes, kernel shape and the parameters that
/// matter (bits, stride, padding, pooling, activation); for a branched model (or one with a
/// dangling branch) a "Connected to" column with the inbound layers of each, and a note naming
/// the layers the output does not depend on.
pub fn summary(model: &Model) -> String {
    let branched = is_branched(model);
    let dangling = dangling_layers(model);
    let show_connections = branched || !dangling.is_empty();
    let mut headers: Vec<&str> = vec!["Layer (type)", "Input shape", "Output shape", "Kernel shape", "Parameters"];
    if show_connections {
        headers.insert(3, "Connected to");
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (index, layer) in model.layers().iter().enumerate() {
        let r = layer.resolved().expect("layers in a model are resolved");
        let mut details: Vec<String> = Vec::new();
        let mut kernel = String::from("-");
        match layer.params() {
            LayerParams::InputData { input_bits, .. } => details.push(format!("input_bits={input_bits}")),
            LayerParams::FullyConnected { weights_bits, .. } => details.push(format!("weights_bits={weights_bits}")),
            LayerParams::Concat { .. } => {}
            p => {
                let c = p.convolution().expect("convolutional layers have a convolution");
                kernel = if matches!(p, LayerParams::SeparableConvolutional { .. }) {
                    format!(
                        "({}, {}, {}, 1) + (1, 1, {}, {})",
                        c.kernel_height, c.kernel_width, r.input_shape.channels, r.input_shape.channels, c.num_neurons
                    )
                } else {
                    format!("({}, {}, {}, {})", c.kernel_height, c.kernel_width, r.input_shape.channels, c.num_neurons)
                };
                details.push(format!("weights_bits={}", c.weights_bits));
                details.push(mode(c.mode).to_owned());
                if (c.stride_x, c.stride_y) != (1, 1) {
                    details.push(format!("stride {}x{}", c.stride_y, c.stride_x));
                }
                if let LayerParams::InputConvolutional { padding_value, .. } = p {
                    if *padding_value != 0 {
                        details.push(format!("padding_value={padding_value}"));
                    }
                }
                if let Some(pool) = p.pooling().and_then(pooling) {
                    details.push(pool);
                }
            }
        }
        if let LayerParams::FullyConnected { .. } = layer.params() {
            kernel = format!(
                "({}, {}, {}, {})",
                r.input_shape.height, r.input_shape.width, r.input_shape.channels, r.output_shape.channels
            );
        }
        if let Some(l) = layer.learning() {
            let threshold = layer.params().activation().map_or(0, |a| a.threshold_fire);
            details.push(format!(
                "learning AkidaUnsupervised, {} classes, #InConn/#Weights/ThFire {}/{}/{}",
                l.config.num_classes,
                layer.connections(),
                l.config.num_weights,
                threshold
            ));
        }
        if let Some(a) = layer.params().activation() {
            if a.enabled {
                details.push(format!("act {}-bit", a.threshold_fire_bits));
            } else {
                details.push("potentials".to_owned());
            }
        }
        let mut row = vec![
            format!("{} ({})", layer.name(), layer.kind().type_name()),
            shape(r.input_shape),
            shape(r.output_shape),
            kernel,
            details.join(", "),
        ];
        if show_connections {
            let inbound: Vec<&str> = model.inbound(index).iter().map(|&j| model.layers()[j].name()).collect();
            let mut cell = if inbound.is_empty() { "-".to_owned() } else { inbound.join(", ") };
            if dangling.contains(&index) {
                cell.push_str(" (dangling)");
            }
            row.insert(3, cell);
        }
        rows.push(row);
    }
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let padded: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        padded.join("  ").trim_end().to_owned()
    };
    let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
    let mut out = String::new();
    out.push_str(&line(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>()));
    out.push('\n');
    out.push_str(&"=".repeat(total));
    out.push('\n');
    for row in &rows {
        out.push_str(&line(row));
        out.push('\n');
    }
    out.push_str(&"=".repeat(total));
    out.push('\n');
    if !dangling.is_empty() {
        let names: Vec<&str> = dangling.iter().map(|&i| model.layers()[i].name()).collect();
        let last = model.layers().last().map_or("", |l| l.name());
        out.push_str(&format!(
            "Dangling (not on the path to the output layer '{last}', so forward does not compute them): {}\n",
            names.join(", ")
        ));
    }
    out
}
