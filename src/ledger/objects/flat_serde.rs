//! `flat_serde!`: the flat stored and served form of the objects that hold a conserved
//! balance ([`super::Claim`], [`super::Pledge`], [`super::Allocation`]).

/// Serde for an object holding a conserved balance (`$bal`, whose total is stored under
/// the same name): the stored and served form is flat, as it was before the balance had
/// a type, so neither the state map nor any JSON changes; decoding checks the parts
/// (`from_parts`), so an unbalanced stored object is refused, never loaded.
macro_rules! flat_serde {
    ($t:ident, $repr:ident, $borrowed:ident, $bal:ident: $balty:ident, $unit:ty,
     { $($b:ident: $bt:ty),* $(,)? },
     { $($m:ident: $mt:ty),* $(,)? },
     [ $($p:ident),* ],
     { $($a:ident: $at:ty),* $(,)? }) => {
        #[derive(Deserialize)]
        struct $repr { $($b: $bt,)* $bal: $unit, $($m: $mt,)* $($p: $unit,)* $($a: $at,)* }

        impl TryFrom<$repr> for $t {
            type Error = Unbalanced;
            fn try_from(r: $repr) -> Result<Self, Unbalanced> {
                Ok($t {
                    $bal: $balty::from_parts(r.$bal, $(r.$p),*)?,
                    $($b: r.$b,)* $($m: r.$m,)* $($a: r.$a,)*
                })
            }
        }

        #[derive(Serialize)]
        struct $borrowed<'a> {
            $($b: &'a $bt,)* $bal: $unit, $($m: &'a $mt,)* $($p: $unit,)* $($a: &'a $at,)*
        }

        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $borrowed {
                    $($b: &self.$b,)*
                    $bal: self.$bal.total(),
                    $($m: &self.$m,)*
                    $($p: self.$bal.$p(),)*
                    $($a: &self.$a,)*
                }
                .serialize(s)
            }
        }
    };
}
