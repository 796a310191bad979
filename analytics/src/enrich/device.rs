//! The device class (`desktop`, `mobile`, `tablet`, `feature_phone`,
//! `appliance`, `other`) of a person's agent.
//!
//! uap-core names devices (`iPhone`, `Samsung SM-T970`, `Generic Feature
//! Phone`) and operating systems but has no class, so the class is decided
//! here from its OS family and device name, then from the model through
//! Matomo's device database ([`super::models`]), then from the agent's own
//! platform tokens. The order matters: TVs and consoles carry `Android` or
//! `Linux`, feature phones carry browser names of smartphones, and Android
//! tablets are told from phones by the missing `Mobile` token (the convention
//! Chrome and Firefox follow). Measured on `analytics/corpora/devices.tsv`;
//! see the analytics README.

use super::models;
use super::uap::Families;

/// Tokens (lowercase) of TVs, set-top boxes, consoles, cars and other
/// appliances with a browser.
const APPLIANCE_MARKERS: &[&str] = &[
    "smart-tv",
    "smarttv",
    "smart tv",
    "googletv",
    "google tv",
    "android tv",
    "androidtv",
    "hbbtv",
    "netcast",
    "web0s",
    "webos.tv",
    "tizen tv",
    "crkey",
    "roku",
    "aftb",
    "aftm",
    "afts",
    "aftt",
    "aftk",
    "aftr",
    "aftss",
    "aftn",
    "aftmm",
    "aftka",
    "bravia",
    "philipstv",
    "vidaa",
    "viziocast",
    "tivo",
    "apple tv",
    "appletv",
    "playstation",
    "xbox",
    "nintendo",
    "ouya",
    "shield android tv",
    "; tv ",
    " tv;",
    "dtv",
    "stb",
    "mibox",
    "qtcarbrowser",
    "tesla",
    "smart display",
    "crkey",
    "opera tv",
    "espial",
    "sonydtv",
    "inettvbrowser",
    "maple",
];

/// Tokens (lowercase) of feature phones: Java ME and WAP browsers, KaiOS,
/// Series 40, MediaTek MRE and the like.
const FEATURE_PHONE_MARKERS: &[&str] = &[
    "kaios",
    "series40",
    "series 40",
    "s40ovibrowser",
    "midp",
    "j2me",
    "cldc",
    "up.browser",
    "up.link",
    "obigo",
    "teleca",
    "mre/",
    "mauireq",
    "mocor",
    "spreadtrum",
    "profile/",
    "wap",
    "brew",
    "polaris",
    "nucleus",
    "openwave",
    "novarra",
    "mib/",
    "dorado",
];

/// Tablet tokens (lowercase) beyond uap-core's device names.
const TABLET_MARKERS: &[&str] = &[
    "ipad",
    "tablet",
    "kindle",
    "silk/",
    "playbook",
    "tab ",
    "; tab",
    "pad;",
    "matepad",
    "xoom",
    "nexus 7",
    "nexus 9",
    "nexus 10",
    "sm-t",
    "sm-x",
    "sm-p",
    "gt-p",
    "lenovo tb",
    "tb-",
    "mediapad",
    "mi pad",
    "redmi pad",
];

/// Mobile tokens (lowercase) for agents whose OS family says nothing.
const MOBILE_MARKERS: &[&str] = &[
    "mobile",
    "iphone",
    "ipod",
    "android",
    "phone",
    "blackberry",
    "bb10",
    "symbian",
    "sailfish",
    "meego",
    "maemo",
    "tizen",
    "harmonyos",
    "webos",
    "palm",
    "bada",
    "opera mini",
    "opera mobi",
    "fennec",
    "iemobile",
    "windows ce",
    "ucbrowser",
    "ucweb",
];

/// Desktop platforms uap-core has no family for (lowercase).
const DESKTOP_MARKERS: &[&str] = &[
    "linux",
    "amigaos",
    "beos",
    "haiku",
    "os/2",
    "openvms",
    "sunos",
    "freebsd",
    "openbsd",
    "netbsd",
    "irix",
    "hp-ux",
    "risc os",
    "morphos",
    "syllable",
    "inferno",
    "win7",
    "win10",
    "win11",
    "win32",
    "win64",
    "windows",
    "mac os",
    "macos",
    "mac_powerpc",
];

/// The class of a person's agent. `lower` is the agent in ASCII lowercase.
pub fn class(lower: &str, families: &Families) -> &'static str {
    let any = |markers: &[&str]| markers.iter().any(|m| lower.contains(m));
    let os = families.os.as_str();
    let device = families.device.as_str();
    if any(APPLIANCE_MARKERS)
        || matches!(
            os,
            "Android TV" | "Fire TV" | "tvOS" | "Roku" | "webOS TV" | "Chromecast"
        )
        || device.contains("Smart TV")
        || device.starts_with("AppleTV")
    {
        return "appliance";
    }
    if os == "KaiOS" || device == "Generic Feature Phone" || any(FEATURE_PHONE_MARKERS) {
        // A smartphone's in-app agent sometimes carries `Profile/MIDP`.
        let smart = matches!(os, "Android" | "iOS" | "Windows Phone" | "BlackBerry OS")
            && !lower.contains("kaios");
        if !smart {
            return "feature_phone";
        }
    }
    if device == "iPad" || device.starts_with("Generic Tablet") || device.contains("Kindle") {
        return "tablet";
    }
    if matches!(device, "iPhone" | "iPod" | "Generic Smartphone") {
        return "mobile";
    }
    // The model, when Matomo's database knows it: it knows the hardware,
    // where the `Mobile` token below is only the browser's convention. Not
    // asked for desktop systems, whose agents name no model: it would cost
    // them ~30 µs per parse for nothing.
    let desktop_os = matches!(
        os,
        "Windows" | "Mac OS X" | "Linux" | "Ubuntu" | "Chrome OS" | "Fedora" | "FreeBSD"
    );
    if !desktop_os && let Some(class) = models::models().class(lower) {
        // Matomo's own rule: an Android "feature phone" is a smartphone.
        return match class {
            "feature_phone" if os == "Android" => "mobile",
            class => class,
        };
    }
    match os {
        "iOS" | "iPadOS" => {
            return if lower.contains("ipad") {
                "tablet"
            } else {
                "mobile"
            };
        }
        "Android" | "Fire OS" | "HarmonyOS" => {
            return if any(TABLET_MARKERS) || !lower.contains("mobile") {
                "tablet"
            } else {
                "mobile"
            };
        }
        "Windows Phone"
        | "Windows Mobile"
        | "BlackBerry OS"
        | "BlackBerry Tablet OS"
        | "Symbian OS"
        | "Symbian^3"
        | "Sailfish"
        | "Firefox OS"
        | "Tizen"
        | "MeeGo"
        | "Maemo"
        | "webOS"
        | "Bada"
        | "Ubuntu Touch" => {
            return if any(TABLET_MARKERS) {
                "tablet"
            } else {
                "mobile"
            };
        }
        _ => {}
    }
    if any(TABLET_MARKERS) && !lower.contains("tablet pc") {
        return "tablet";
    }
    if any(MOBILE_MARKERS) {
        return "mobile";
    }
    let desktop_os = matches!(
        os,
        "Windows" | "Mac OS X" | "Linux" | "Ubuntu" | "Chrome OS" | "Fedora" | "FreeBSD"
    ) || os.starts_with("Windows");
    if desktop_os
        || lower.contains("windows nt")
        || lower.contains("macintosh")
        || lower.contains("x11")
        || lower.contains("cros")
        || lower.contains("darwin")
        || any(DESKTOP_MARKERS)
    {
        return "desktop";
    }
    "other"
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::uap::families;

    fn c(ua: &str) -> &'static str {
        class(&ua.to_ascii_lowercase(), &families(ua))
    }

    #[test]
    fn known_misses_of_the_old_parser() {
        assert_eq!(
            c(
                "Mozilla/5.0 (iPhone; CPU IPhone OS 16_6 Like Mac OS X) AppleWebKit/605.1.15 (KHTML, Like Gecko) Version/16.6 Mobile/15E148 Safari/604.1"
            ),
            "mobile"
        );
        assert_eq!(
            c(
                "Mozilla/5.0 (Windows NT 6.4; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/36.0.1985.143 Safari/537.36 Edge/12.0"
            ),
            "desktop"
        );
        assert_eq!(
            c(
                "Mozilla/5.0 (Linux; U; Sailfish 3.0; Mobile; rv:45.0) Gecko/45.0 Firefox/45.0 SailfishBrowser/1.0"
            ),
            "mobile"
        );
        assert_eq!(
            c("Mozilla/5.0 (Mobile; Nokia 8000 4G; rv:48.0) Gecko/48.0 Firefox/48.0 KAIOS/2.5.2"),
            "feature_phone"
        );
        assert_eq!(
            c(
                "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36"
            ),
            "tablet"
        );
        assert_eq!(
            c(
                "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7233) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.110 Mobile Safari/537.36"
            ),
            "appliance"
        );
    }
}
