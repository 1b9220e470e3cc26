//! Settings declared once. A [`settings!`](crate::settings) table declares a
//! group of settings, one row per variable; from it come the group's struct,
//! its reading (bounds and defaults, every problem collected by the
//! [`Reader`]), its redacted view and its documentation. A [`Kind`] says how
//! one variable is read, shown and documented.

use serde_json::{Map, Value};

use super::reader::Reader;

/// Settings by variable name, as `check-config` and `GET /admin/config` show
/// them.
pub type View = Map<String, Value>;

/// Shown in place of a secret that is set.
pub const REDACTED: &str = "[redacted]";

/// `[redacted]` when a secret is set, `null` when it is not.
pub fn secret_state(is_set: bool) -> Value {
    if is_set {
        Value::from(REDACTED)
    } else {
        Value::Null
    }
}

/// Written in the documentation for a setting without a default.
pub const NO_DEFAULT: &str = "—";

/// One documented variable: a row of the README's configuration table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    /// Markdown: a `code` value, prose (`random per process in development`)
    /// or `—` when unset means off.
    pub default: String,
    pub meaning: &'static str,
}

impl Var {
    pub fn new(name: &'static str, default: String, meaning: &'static str) -> Self {
        Self {
            name,
            default,
            meaning: meaning.trim(),
        }
    }
}

/// How one variable is read into a `T`, shown and documented.
pub trait Kind<T> {
    /// How the table writes the default: `()` for settings without one.
    type Default;

    /// Reads the variable; a bad value is recorded as a problem and the
    /// default (or an empty value) stands in for it.
    fn read(&self, r: &mut Reader, var: &'static str, default: Self::Default) -> T;

    /// The value as operators see it, secrets redacted.
    fn show(&self, value: &T) -> Value;

    /// The default as the documentation writes it (Markdown).
    fn describe(&self, default: &Self::Default) -> String;
}

/// A group of settings declared with [`settings!`](crate::settings).
pub trait Group {
    /// Every variable of the group, in table order.
    fn vars(out: &mut Vec<Var>);

    /// Every setting by variable name, secrets redacted.
    fn view(&self, out: &mut View);

    /// The group's variables, documented.
    fn documented() -> Vec<Var>
    where
        Self: Sized,
    {
        let mut vars = Vec::new();
        Self::vars(&mut vars);
        vars
    }

    /// The names of the group's variables.
    fn names() -> Vec<&'static str>
    where
        Self: Sized,
    {
        Self::documented().iter().map(|v| v.name).collect()
    }

    /// The view as one JSON object.
    fn redacted_view(&self) -> Value {
        let mut view = View::new();
        self.view(&mut view);
        Value::Object(view)
    }
}

/// The configuration table of the README: one row per variable.
pub fn markdown_table(vars: &[Var]) -> String {
    let mut table = String::from("| variable | default | meaning |\n|---|---|---|\n");
    for var in vars {
        table.push_str(&format!(
            "| `{}` | {} | {} |\n",
            var.name,
            escape_cell(&var.default),
            escape_cell(var.meaning)
        ));
    }
    table
}

/// A pipe inside a table cell ends the cell unless escaped.
fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

/// Declares a group of settings: the struct, `read` (every variable with its
/// bounds and default, in table order) and its [`Group`] impl (variable list
/// with documentation, redacted view).
///
/// ```text
/// settings! {
///     #[derive(Debug)]
///     pub struct Example given (production: bool) {
///         /// meaning, for the documentation
///         pub name: Type = "VARIABLE", Kind, default EXPR, view FN => "doc default";
///         pub nested: OtherGroup = group(ARGS);
///         pub computed: Type = derived(EXPR);
///     }
/// }
/// ```
///
/// - A variable row: `default` is optional (settings without one pass `()`)
///   and may use `given` parameters and fields above it; when it does, write
///   the documented default after `=>`. `view FN` shows the row with
///   `FN(&group)` instead of the kind.
/// - `group` nests another group, read with `ARGS`.
/// - `derived` is no variable: it starts as `EXPR` and the rules written after
///   the table set it.
#[macro_export]
macro_rules! settings {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident $(given ($($param:ident : $pty:ty),* $(,)?))? {
            $($rows:tt)*
        }
    ) => {
        $crate::settings!(@rows
            [$(#[$attr])* $vis struct $name ($($($param : $pty),*)?)]
            [] [] []
            $($rows)*
        );
    };

    // A nested group.
    (@rows $head:tt [$($fields:tt)*] [$($names:ident)*] [$($done:tt)*]
        $(#[doc = $doc:literal])*
        $fvis:vis $field:ident : $ty:ty = group $(($($arg:expr),* $(,)?))? ;
        $($rest:tt)*
    ) => {
        $crate::settings!(@rows $head
            [$($fields)* $(#[doc = $doc])* $fvis $field: $ty,]
            [$($names)* $field]
            [$($done)* [group $field ($ty) ($($($arg),*)?)]]
            $($rest)*
        );
    };

    // A field the rules after the table compute.
    (@rows $head:tt [$($fields:tt)*] [$($names:ident)*] [$($done:tt)*]
        $(#[doc = $doc:literal])*
        $fvis:vis $field:ident : $ty:ty = derived($init:expr) ;
        $($rest:tt)*
    ) => {
        $crate::settings!(@rows $head
            [$($fields)* $(#[doc = $doc])* $fvis $field: $ty,]
            [$($names)* $field]
            [$($done)* [derived $field ($ty) ($init)]]
            $($rest)*
        );
    };

    // One variable.
    (@rows $head:tt [$($fields:tt)*] [$($names:ident)*] [$($done:tt)*]
        $(#[doc = $doc:literal])*
        $fvis:vis $field:ident : $ty:ty = $var:literal, $kind:expr
            $(, default $default:expr)? $(, view $view:path)? $(=> $described:literal)? ;
        $($rest:tt)*
    ) => {
        $crate::settings!(@rows $head
            [$($fields)* $(#[doc = $doc])* $fvis $field: $ty,]
            [$($names)* $field]
            [$($done)* [var $field ($ty) $var ($kind) [$($default)?] [$($view)?]
                [$($described)?] [$($doc)*]]]
            $($rest)*
        );
    };

    // Every row read: the struct, `read` and the `Group` impl.
    (@rows
        [$(#[$attr:meta])* $vis:vis struct $name:ident ($($param:ident : $pty:ty),*)]
        [$($fields:tt)*] [$($names:ident)*] [$($row:tt)*]
    ) => {
        $(#[$attr])*
        $vis struct $name {
            $($fields)*
        }

        impl $name {
            /// Reads every variable of the table, in order.
            pub(crate) fn read(r: &mut $crate::config::Reader $(, $param: $pty)*) -> Self {
                $($crate::settings!(@read r $row);)*
                Self { $($names),* }
            }
        }

        impl $crate::config::Group for $name {
            fn vars(out: &mut ::std::vec::Vec<$crate::config::Var>) {
                $($crate::settings!(@vars out $row);)*
            }

            fn view(&self, out: &mut $crate::config::View) {
                let this = self;
                $($crate::settings!(@view this out $row);)*
            }
        }
    };

    (@read $r:ident [group $field:ident ($ty:ty) ($($arg:expr),*)]) => {
        let $field = <$ty>::read($r $(, $arg)*);
    };
    (@read $r:ident [derived $field:ident ($ty:ty) ($init:expr)]) => {
        let $field: $ty = $init;
    };
    (@read $r:ident [var $field:ident ($ty:ty) $var:literal ($kind:expr) [$($default:expr)?]
        $($ignored:tt)*]) => {
        let $field: $ty = <_ as $crate::config::Kind<$ty>>::read(
            &$kind,
            $r,
            $var,
            $crate::settings!(@default $($default)?),
        );
    };

    (@vars $out:ident [group $field:ident ($ty:ty) $($ignored:tt)*]) => {
        <$ty as $crate::config::Group>::vars($out);
    };
    (@vars $out:ident [derived $($ignored:tt)*]) => {};
    (@vars $out:ident [var $field:ident ($ty:ty) $var:literal ($kind:expr) [$($default:expr)?]
        [$($view:path)?] [$($described:literal)?] [$($doc:literal)*]]) => {
        $out.push($crate::config::Var::new(
            $var,
            $crate::settings!(@describe ($ty) ($kind) [$($default)?] [$($described)?]),
            concat!($($doc),*),
        ));
    };

    (@view $this:ident $out:ident [group $field:ident $($ignored:tt)*]) => {
        $crate::config::Group::view(&$this.$field, $out);
    };
    (@view $this:ident $out:ident [derived $($ignored:tt)*]) => {};
    (@view $this:ident $out:ident [var $field:ident ($ty:ty) $var:literal ($kind:expr)
        [$($default:expr)?] [] $($ignored:tt)*]) => {
        $out.insert(
            $var.to_owned(),
            <_ as $crate::config::Kind<$ty>>::show(&$kind, &$this.$field),
        );
    };
    (@view $this:ident $out:ident [var $field:ident ($ty:ty) $var:literal ($kind:expr)
        [$($default:expr)?] [$view:path] $($ignored:tt)*]) => {
        $out.insert($var.to_owned(), $view($this));
    };

    (@default) => { () };
    (@default $default:expr) => { $default };

    (@describe ($ty:ty) ($kind:expr) [$($default:expr)?] [$described:literal]) => {
        ::std::string::String::from($described)
    };
    (@describe ($ty:ty) ($kind:expr) [$($default:expr)?] []) => {
        <_ as $crate::config::Kind<$ty>>::describe(
            &$kind,
            &$crate::settings!(@default $($default)?),
        )
    };
}
