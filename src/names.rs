//! Enums chosen by name in configs and on the command line: each variant's name, the list of
//! all of them, `Display` and `FromStr` (with an error that lists the valid names), written once.

/// Declares a fieldless enum whose variants have names: `ALL`, `name()`, `Display`, `FromStr`.
/// `$what` names the kind of value in the parse error ("unknown backend 'tpu' (expected …)").
/// Serde attributes on the enum must spell the same names.
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in the order `--help` lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used in configs and on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> ::std::result::Result<Self, Self::Err> {
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.name() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = $name::ALL.iter().map(|v| v.name()).collect();
                        format!(
                            "unknown {} '{s}' (expected {})",
                            $what,
                            $crate::names::one_of(&names)
                        )
                    })
            }
        }
    };
}

/// "a, b or c".
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [only] => only.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::one_of;

    named_enum! {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Colour("colour") {
            Red = "red",
            DarkBlue = "dark_blue",
        }
    }

    #[test]
    fn names_round_trip_and_errors_list_the_choices() {
        for c in Colour::ALL {
            assert_eq!(c.name().parse::<Colour>(), Ok(*c));
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!(
            "green".parse::<Colour>(),
            Err("unknown colour 'green' (expected red or dark_blue)".to_string())
        );
        assert_eq!(one_of(&["a", "b", "c"]), "a, b or c");
    }
}
