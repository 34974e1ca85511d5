//! Default SQL names derived from Rust names.

/// `ProductCategory` -> `product_category`, `HTTPServer` -> `http_server`.
pub fn snake_case(ident: &str) -> String {
    let chars: Vec<char> = ident.chars().collect();
    let mut out = String::with_capacity(ident.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|p| chars[p]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_uppercase() => next.is_some_and(|n| n.is_lowercase()),
                _ => false,
            };
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The default column of a `belongs_to` field: `user` -> `user_id`, `owner_id` stays.
pub fn foreign_key_column(field: &str) -> String {
    if field.ends_with("_id") {
        field.to_owned()
    } else {
        format!("{field}_id")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_cases_struct_names() {
        assert_eq!(snake_case("User"), "user");
        assert_eq!(snake_case("ProductCategory"), "product_category");
        assert_eq!(snake_case("HTTPServer"), "http_server");
        assert_eq!(snake_case("Item2Tag"), "item2_tag");
    }

    #[test]
    fn foreign_key_columns() {
        assert_eq!(foreign_key_column("user"), "user_id");
        assert_eq!(foreign_key_column("owner_id"), "owner_id");
    }
}
