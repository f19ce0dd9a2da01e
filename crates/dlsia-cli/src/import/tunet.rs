//! `topo_dict` of dlsia's `TUNet` (15 keys) and `TUNet3Plus` (17 keys) → dlsia-nets
//! configurations.

use dlsia_nets::{TuNet3PlusConfig, TuNetConfig, Upsampling};

use super::classes::{activation, class_dims, normalization};
use super::topo_dict::TopoDict;
use crate::error::{format_err, unsupported, Result};
use crate::pickle::Value;

/// The entries TUNet and TUNet3+ share, read and cross-checked.
struct UnetCommon {
    image_shape: Vec<usize>,
    in_channels: usize,
    out_channels: usize,
    depth: usize,
    base_channels: usize,
    growth_rate: f64,
    hidden_rate: f64,
    dims: usize,
}

fn common(t: &mut TopoDict) -> Result<UnetCommon> {
    let image_shape = t.shape("image_shape")?;
    let what = t.what("conv_kernel");
    let dims = class_dims(&t.take("conv_kernel")?, "conv", "Conv", &what)?;
    if image_shape.len() != dims {
        return Err(format_err(
            t.what("image_shape"),
            format!(
                "{} axes for a {dims}-D network (conv_kernel Conv{dims}d)",
                image_shape.len()
            ),
        ));
    }
    let what = t.what("kernel_down");
    let down = class_dims(&t.take("kernel_down")?, "pooling", "MaxPool", &what)?;
    if down != dims {
        return Err(format_err(
            what,
            format!("MaxPool{down}d in a {dims}-D network"),
        ));
    }
    Ok(UnetCommon {
        image_shape,
        in_channels: t.usize("in_channels")?,
        out_channels: t.usize("out_channels")?,
        depth: t.usize("depth")?,
        base_channels: t.usize("base_channels")?,
        growth_rate: t.f64("growth_rate")?,
        hidden_rate: t.f64("hidden_rate")?,
        dims,
    })
}

/// Decodes a TUNet `topo_dict`. dlsia does not save `final_activation`, so the result has
/// none (the original's reloaded network has none either).
pub fn decode_tunet(topo: &Value) -> Result<TuNetConfig> {
    let mut t = TopoDict::new("TUNet", topo)?;
    let c = common(&mut t)?;
    let what = t.what("kernel_up");
    let up = class_dims(&t.take("kernel_up")?, "conv", "ConvTranspose", &what)?;
    if up != c.dims {
        return Err(format_err(
            what,
            format!("ConvTranspose{up}d in a {}-D network", c.dims),
        ));
    }
    let what = t.what("normalization");
    let norm = normalization(&t.take("normalization")?, c.dims, &what)?;
    let what = t.what("activation");
    let act = activation(&t.take("activation")?, &what)?;
    let mut cfg = TuNetConfig::new(
        &c.image_shape,
        c.in_channels,
        c.out_channels,
        c.depth,
        c.base_channels,
    );
    cfg.growth_rate = c.growth_rate;
    cfg.hidden_rate = c.hidden_rate;
    cfg.normalization = norm;
    cfg.activation = act;
    cfg.conv_kernel_size = t.usize("conv_kernel_size")?;
    cfg.maxpool_kernel_size = t.usize("maxpool_kernel_size")?;
    cfg.dilation = t.usize("dilation")?;
    t.finish()?;
    Ok(cfg)
}

/// Decodes a TUNet3+ `topo_dict` (`stride` is ignored by dlsia, which overwrites it with
/// `maxpool_kernel_size`; a file where they differ is refused).
pub fn decode_tunet3plus(topo: &Value) -> Result<TuNet3PlusConfig> {
    let mut t = TopoDict::new("TUNet3Plus", topo)?;
    let c = common(&mut t)?;
    let what = t.what("kernel_up");
    let up = t.take("kernel_up")?;
    let upsampling = match up.as_global() {
        Some(g) if g.is("torch.nn.modules.upsampling", "Upsample") => Upsampling::Nearest,
        _ => {
            let d = class_dims(&up, "conv", "ConvTranspose", &what).map_err(|_| {
                unsupported(
                    &what,
                    format!(
                        "expected nn.Upsample or nn.ConvTranspose{}d, found {}",
                        c.dims,
                        up.type_name()
                    ),
                )
            })?;
            if d != c.dims {
                return Err(format_err(
                    what,
                    format!("ConvTranspose{d}d in a {}-D network", c.dims),
                ));
            }
            Upsampling::ConvTranspose
        }
    };
    let what = t.what("normalization");
    let norm = normalization(&t.take("normalization")?, c.dims, &what)?;
    let what = t.what("activation");
    let act = activation(&t.take("activation")?, &what)?;
    let mut cfg = TuNet3PlusConfig::new(
        &c.image_shape,
        c.in_channels,
        c.out_channels,
        c.depth,
        c.base_channels,
    );
    cfg.growth_rate = c.growth_rate;
    cfg.hidden_rate = c.hidden_rate;
    cfg.carryover_channels = t.usize("carryover_channels")?;
    cfg.upsampling = upsampling;
    cfg.normalization = norm;
    cfg.activation = act;
    cfg.conv_kernel_size = t.usize("conv_kernel_size")?;
    cfg.maxpool_kernel_size = t.usize("maxpool_kernel_size")?;
    let stride = t.usize("stride")?;
    if stride != cfg.maxpool_kernel_size {
        return Err(format_err(
            t.what("stride"),
            format!(
                "{stride} differs from maxpool_kernel_size {}; dlsia always saves them equal",
                cfg.maxpool_kernel_size
            ),
        ));
    }
    cfg.dilation = t.usize("dilation")?;
    t.finish()?;
    Ok(cfg)
}
