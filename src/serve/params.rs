//! Request fields to [`Controls`]: every field named, parsed and range-checked, nothing clamped
//! silently. A photo's fields come from the query string and multipart form fields; the live
//! controls come as JSON.

use std::ops::RangeInclusive;

use serde::{Deserialize, Deserializer, Serialize};

use super::error::ApiError;
use crate::controls::{Controls, Resolution, BRUSH_RANGE};
use crate::style::Split;

/// The fields `POST /api/stylize` takes (besides the picture).
pub const PHOTO_FIELDS: [&str; 8] = [
    "style",
    "style2",
    "mix",
    "split",
    "brush",
    "strength",
    "preserve_color",
    "size",
];
const UNIT: RangeInclusive<f32> = 0.0..=1.0;
/// The smallest photo size.
pub const MIN_SIZE: u32 = 16;

/// A photo to stylise: the controls, and the length of the result's longer side (`None`: the
/// photo's own, capped by the server's default size).
#[derive(Debug, Clone, PartialEq)]
pub struct PhotoRequest {
    pub controls: Controls,
    pub size: Option<u32>,
}

/// The canonical name of a known style (exact, then ignoring case), as the bank finds it.
pub fn find_style<'a>(known: &'a [String], name: &str) -> Option<&'a str> {
    known
        .iter()
        .find(|k| *k == name)
        .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(name)))
        .map(String::as_str)
}

fn style(known: &[String], field: &str, name: &str) -> Result<String, ApiError> {
    find_style(known, name).map(str::to_owned).ok_or_else(|| {
        let list = known.join(", ");
        ApiError::bad(
            "unknown_style",
            format!("`{field}`: no style named `{name}`; the styles are: {list} (GET /api/styles)"),
        )
    })
}

fn number(field: &str, value: &str, range: RangeInclusive<f32>) -> Result<f32, ApiError> {
    let v: f32 = value
        .trim()
        .parse()
        .ok()
        .filter(|v: &f32| v.is_finite())
        .ok_or_else(|| {
            ApiError::bad(
                "bad_parameter",
                format!(
                    "`{field}` must be a number from {} to {}, got `{value}`",
                    range.start(),
                    range.end()
                ),
            )
        })?;
    in_range(field, v, range)
}

fn in_range(field: &str, v: f32, range: RangeInclusive<f32>) -> Result<f32, ApiError> {
    if range.contains(&v) {
        Ok(v)
    } else {
        Err(ApiError::bad(
            "out_of_range",
            format!(
                "`{field}` is {v}; it must be from {} to {}",
                range.start(),
                range.end()
            ),
        ))
    }
}

fn boolean(field: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        _ => Err(ApiError::bad(
            "bad_parameter",
            format!("`{field}` must be true or false, got `{value}`"),
        )),
    }
}

fn split(field: &str, value: &str) -> Result<Split, ApiError> {
    value
        .trim()
        .parse::<Split>()
        .map_err(|e| ApiError::bad("bad_parameter", format!("`{field}`: {e}")))
}

/// Reads a photo request's fields. `known`: the style names; `max_size`: the longest side a
/// result may have. `token` (the access token) is ignored; any other unknown field is refused.
pub fn photo_request(
    fields: &[(String, String)],
    known: &[String],
    max_size: u32,
) -> Result<PhotoRequest, ApiError> {
    let mut seen: Vec<&str> = Vec::new();
    let mut c = Controls {
        resolution: Resolution::Native,
        anti_flicker: 0.0,
        ..Controls::default()
    };
    let (mut style1, mut mix, mut size) = (None, None, None);
    for (k, v) in fields {
        let k = k.as_str();
        if k == "token" {
            continue;
        }
        if !PHOTO_FIELDS.contains(&k) {
            return Err(ApiError::bad(
                "unknown_parameter",
                format!(
                    "unknown field `{k}`; the fields are {}",
                    PHOTO_FIELDS.join(", ")
                ),
            ));
        }
        if seen.contains(&k) {
            return Err(ApiError::bad(
                "bad_parameter",
                format!("`{k}` is given twice"),
            ));
        }
        seen.push(k);
        match k {
            "style" => style1 = Some(style(known, k, v)?),
            "style2" if v.trim().is_empty() => {}
            "style2" => c.second_style = Some(style(known, k, v)?),
            "mix" => mix = Some(number(k, v, UNIT)?),
            "split" if v.trim().is_empty() => {}
            "split" => c.split = Some(split(k, v)?),
            "brush" => c.brush = number(k, v, BRUSH_RANGE)?,
            "strength" => c.strength = number(k, v, UNIT)?,
            "preserve_color" => c.preserve_color = boolean(k, v)?,
            "size" => {
                let s = number(k, v, MIN_SIZE as f32..=max_size as f32)?;
                if s.fract() != 0.0 {
                    return Err(ApiError::bad(
                        "bad_parameter",
                        format!("`size` must be a whole number of pixels, got `{v}`"),
                    ));
                }
                size = Some(s as u32);
            }
            _ => {}
        }
    }
    c.style = style1.ok_or_else(|| {
        ApiError::bad(
            "missing_parameter",
            format!(
                "say which style: `style` is one of {} (GET /api/styles)",
                known.join(", ")
            ),
        )
    })?;
    match (&c.second_style, mix, c.split) {
        (None, Some(_), _) | (None, _, Some(_)) => {
            return Err(ApiError::bad(
                "bad_parameter",
                "`mix` and `split` combine two styles: give `style2` too",
            ))
        }
        (Some(_), Some(_), Some(_)) => {
            return Err(ApiError::bad(
                "bad_parameter",
                "give `mix` or `split`, not both",
            ))
        }
        _ => {}
    }
    if let Some(m) = mix {
        c.mix = m;
    }
    Ok(PhotoRequest { controls: c, size })
}

/// `null` in JSON as `Some(None)`, a missing field as `None`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A change to the live controls (`POST /api/controls`); missing fields stay as they are, `null`
/// clears `style2` and `split`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlsUpdate {
    pub style: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub style2: Option<Option<String>>,
    pub mix: Option<f32>,
    #[serde(default, deserialize_with = "present")]
    pub split: Option<Option<String>>,
    pub brush: Option<f32>,
    pub strength: Option<f32>,
    pub preserve_color: Option<bool>,
    pub resolution: Option<String>,
    pub anti_flicker: Option<f32>,
}

/// The live controls as the API shows them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ControlsView {
    pub style: String,
    pub style2: Option<String>,
    pub mix: f32,
    pub split: Option<Split>,
    pub brush: f32,
    pub strength: f32,
    pub preserve_color: bool,
    pub resolution: &'static str,
    pub anti_flicker: f32,
}

impl From<&Controls> for ControlsView {
    fn from(c: &Controls) -> Self {
        Self {
            style: c.style.clone(),
            style2: c.second_style.clone(),
            mix: c.mix,
            split: c.split,
            brush: c.brush,
            strength: c.strength,
            preserve_color: c.preserve_color,
            resolution: c.resolution.label(),
            anti_flicker: c.anti_flicker,
        }
    }
}

impl ControlsUpdate {
    /// Parses a JSON body.
    pub fn from_json(body: &[u8]) -> Result<Self, ApiError> {
        serde_json::from_slice(body).map_err(|e| {
            ApiError::bad(
                "bad_json",
                format!(
                    "the body must be a JSON object with any of style, style2, mix, split, \
                     brush, strength, preserve_color, resolution, anti_flicker: {e}"
                ),
            )
        })
    }

    /// `current` with this change, every value checked.
    pub fn apply_to(&self, current: &Controls, known: &[String]) -> Result<Controls, ApiError> {
        let mut c = current.clone();
        if let Some(s) = &self.style {
            c.style = style(known, "style", s)?;
        }
        match &self.style2 {
            Some(Some(s)) if !s.trim().is_empty() => {
                c.second_style = Some(style(known, "style2", s)?)
            }
            Some(_) => c.second_style = None,
            None => {}
        }
        match &self.split {
            Some(Some(s)) if !s.trim().is_empty() => c.split = Some(split("split", s)?),
            Some(_) => c.split = None,
            None => {}
        }
        if let Some(v) = self.mix {
            c.mix = in_range("mix", v, UNIT)?;
        }
        if let Some(v) = self.brush {
            c.brush = in_range("brush", v, BRUSH_RANGE)?;
        }
        if let Some(v) = self.strength {
            c.strength = in_range("strength", v, UNIT)?;
        }
        if let Some(v) = self.anti_flicker {
            c.anti_flicker = in_range("anti_flicker", v, UNIT)?;
        }
        if let Some(v) = self.preserve_color {
            c.preserve_color = v;
        }
        if let Some(r) = &self.resolution {
            c.resolution = r.parse().map_err(|e: String| {
                ApiError::bad("bad_parameter", format!("`resolution`: {e}"))
            })?;
        }
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> Vec<String> {
        vec!["candy".into(), "Mosaic".into()]
    }

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(pairs: &[(&str, &str)]) -> ApiError {
        photo_request(&fields(pairs), &known(), 1024).unwrap_err()
    }

    #[test]
    fn a_full_request_maps_onto_the_controls() {
        let r = photo_request(
            &fields(&[
                ("style", "candy"),
                ("style2", "mosaic"),
                ("split", "radial"),
                ("brush", "0.5"),
                ("strength", "0.75"),
                ("preserve_color", "on"),
                ("size", "256"),
                ("token", "ignored"),
            ]),
            &known(),
            1024,
        )
        .unwrap();
        let c = &r.controls;
        assert_eq!(c.style, "candy");
        assert_eq!(c.second_style.as_deref(), Some("Mosaic"));
        assert_eq!(c.split, Some(Split::Radial));
        assert_eq!((c.brush, c.strength, c.preserve_color), (0.5, 0.75, true));
        assert_eq!(r.size, Some(256));
        assert_eq!(c.resolution, Resolution::Native);
    }

    #[test]
    fn bad_fields_are_named() {
        let e = err(&[("style", "nope")]);
        assert_eq!(e.kind, "unknown_style");
        assert!(e.message.contains("`nope`") && e.message.contains("candy, Mosaic"));
        assert_eq!(
            err(&[("style", "candy"), ("brush", "9")]).kind,
            "out_of_range"
        );
        assert_eq!(
            err(&[("style", "candy"), ("brush", "NaN")]).kind,
            "bad_parameter"
        );
        assert_eq!(
            err(&[("style", "candy"), ("size", "2048")]).kind,
            "out_of_range"
        );
        assert_eq!(
            err(&[("style", "candy"), ("size", "20.5")]).kind,
            "bad_parameter"
        );
        assert_eq!(
            err(&[("style", "candy"), ("mix", "0.5")]).kind,
            "bad_parameter"
        );
        assert_eq!(
            err(&[("style", "candy"), ("colour", "1")]).kind,
            "unknown_parameter"
        );
        assert_eq!(
            err(&[("style", "candy"), ("style", "candy")]).kind,
            "bad_parameter"
        );
        assert_eq!(err(&[("brush", "1")]).kind, "missing_parameter");
        let e = err(&[
            ("style", "candy"),
            ("style2", "candy"),
            ("mix", "0.2"),
            ("split", "vertical"),
        ]);
        assert!(e.message.contains("not both"), "{}", e.message);
    }

    #[test]
    fn controls_updates_change_only_what_they_name() {
        let start = Controls {
            style: "candy".into(),
            ..Controls::default()
        };
        let u = ControlsUpdate::from_json(br#"{"style2": "mosaic", "mix": 0.25}"#).unwrap();
        let c = u.apply_to(&start, &known()).unwrap();
        assert_eq!(
            (c.style.as_str(), c.second_style.as_deref(), c.mix),
            ("candy", Some("Mosaic"), 0.25)
        );
        let c = ControlsUpdate::from_json(br#"{"style2": null}"#)
            .unwrap()
            .apply_to(&c, &known())
            .unwrap();
        assert_eq!(c.second_style, None);
        let e = ControlsUpdate::from_json(br#"{"brush": 7}"#)
            .unwrap()
            .apply_to(&start, &known())
            .unwrap_err();
        assert_eq!(e.kind, "out_of_range");
        assert_eq!(
            ControlsUpdate::from_json(br#"{"colour": 1}"#)
                .unwrap_err()
                .kind,
            "bad_json"
        );
        assert_eq!(
            ControlsUpdate::from_json(b"[1,2]").unwrap_err().kind,
            "bad_json"
        );
    }
}
