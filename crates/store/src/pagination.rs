//! List pages: sizes, opaque page tokens bound to the query that made them, and a
//! small SQL builder for the keyset conditions and filters lists share.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use fabula_runtime::rules::Checks;
use fabula_runtime::rules::{self, Rule};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::error::{Result, invalid};

/// Page size when none is asked for.
pub const DEFAULT_PAGE_SIZE: i64 = 50;
/// Larger page sizes are lowered to this.
pub const MAX_PAGE_SIZE: i64 = 200;

/// What a list method declares of its request (the rules of its `page_size`,
/// `page_token` and `filter` fields) and the column each filter field compares.
pub struct Listing {
    pub page_size: &'static Rule,
    pub page_token: &'static Rule,
    pub filter: &'static Rule,
    pub columns: &'static [(&'static str, &'static str)],
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub size: i64,
    /// The sort key of the last item of the previous page; read it through
    /// [`Page::after_like`], which refuses forged keys of the wrong shape.
    after: Option<Vec<Key>>,
    fingerprint: String,
}

/// One column of a sort key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Key {
    Int(i64),
    Text(String),
}

#[derive(Serialize, Deserialize)]
struct Token {
    /// The query the token belongs to.
    q: String,
    /// The sort key to continue after.
    k: Vec<Key>,
}

impl Page {
    /// Reads `page_size` and `page_token`, as `listing` declares them, for the query
    /// described by `query` (the method, its parent and its filter): a token made for
    /// another query is refused.
    pub fn parse(page_size: i32, page_token: &str, listing: &Listing, query: &[&str]) -> Result<Self> {
        let size = match listing.page_size.check_int(page_size.into()).map_err(|e| invalid("page_size", e))? {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        rules::text(page_token, listing.page_token).map_err(|e| invalid("page_token", e))?;
        let fingerprint = fingerprint(query);
        let after = if page_token.is_empty() {
            None
        } else {
            let token: Token = URL_SAFE_NO_PAD
                .decode(page_token)
                .ok()
                .and_then(|bytes| serde_json::from_slice(&bytes).ok())
                .ok_or_else(|| invalid("page_token", "is not a page token this service made"))?;
            if token.q != fingerprint {
                return Err(invalid(
                    "page_token",
                    "belongs to another query: keep the filter and parent it was made with",
                ));
            }
            Some(token.k)
        };
        Ok(Self { size, after, fingerprint })
    }

    /// The token for the page after the one ending at `last`.
    pub fn next_token(&self, last: Vec<Key>) -> String {
        let token = Token { q: self.fingerprint.clone(), k: last };
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&token).expect("a token serializes"))
    }

    /// Splits `rows` fetched with [`Page::fetch_limit`] into this page and the token of the next.
    pub fn finish<T>(&self, rows: Vec<T>, key: impl Fn(&T) -> Vec<Key>) -> (Vec<T>, String) {
        self.finish_within(rows, key, |_| 0, usize::MAX)
    }

    /// [`Page::finish`] for rows of `weight` bytes: the page also ends before its rows
    /// weigh more than `budget` (one row at least), so it fits in one message.
    pub fn finish_within<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> Vec<Key>,
        weight: impl Fn(&T) -> usize,
        budget: usize,
    ) -> (Vec<T>, String) {
        let mut total = 0_usize;
        let fits = rows
            .iter()
            .take(self.size as usize)
            .take_while(|row| {
                total = total.saturating_add(weight(row));
                total <= budget
            })
            .count()
            .max(1);
        if rows.len() > fits {
            rows.truncate(fits);
            let token = rows.last().map(|last| self.next_token(key(last))).unwrap_or_default();
            (rows, token)
        } else {
            (rows, String::new())
        }
    }

    /// The key to continue after, if it has the shape of `example` (as many values,
    /// each of the same kind): a token of another shape was not made for this list.
    pub fn after_like(&self, example: &[Key]) -> Result<Option<&[Key]>> {
        let Some(after) = &self.after else {
            return Ok(None);
        };
        let same_kind = |(a, b): (&Key, &Key)| std::mem::discriminant(a) == std::mem::discriminant(b);
        if after.len() == example.len() && after.iter().zip(example).all(same_kind) {
            Ok(Some(after))
        } else {
            Err(invalid("page_token", "is not a page token this service made"))
        }
    }

    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch_limit(&self) -> i64 {
        self.size + 1
    }
}

fn fingerprint(query: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in query {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    URL_SAFE_NO_PAD.encode(&hash.finalize()[..12])
}

/// A value bound to a query.
#[derive(Debug, Clone, PartialEq)]
pub enum Bind {
    Int(i64),
    Text(String),
}

impl From<&Key> for Bind {
    fn from(key: &Key) -> Self {
        match key {
            Key::Int(n) => Bind::Int(*n),
            Key::Text(s) => Bind::Text(s.clone()),
        }
    }
}

/// A query assembled from parts, numbering its `$n` placeholders as it goes.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self { text: text.to_owned(), binds: Vec::new() }
    }

    /// `head` followed by `condition`, keeping the condition's placeholders and values.
    pub fn select(head: &str, condition: &Sql) -> Self {
        Self { text: format!("{head}{}", condition.text), binds: condition.binds.clone() }
    }

    /// Appends raw SQL.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        self.text.push_str(&format!("${}", self.binds.len()));
        self
    }

    /// Appends ` AND (a > k1 OR (a = k1 AND b > k2) …)` for a keyset continuation.
    pub fn push_after(&mut self, columns: &[&str], after: &[Key]) -> &mut Self {
        self.push_keyset(columns, after, " > ")
    }

    /// Appends ` AND (a < k1 OR (a = k1 AND b < k2) …)`: the rows sorted before `before`.
    pub fn push_before(&mut self, columns: &[&str], before: &[Key]) -> &mut Self {
        self.push_keyset(columns, before, " < ")
    }

    /// The keyset condition of `columns` against `key` under `operator` (`>` or `<`).
    fn push_keyset(&mut self, columns: &[&str], key: &[Key], operator: &str) -> &mut Self {
        self.push(" AND (");
        for (i, column) in columns.iter().enumerate() {
            if i > 0 {
                self.push(" OR (");
            } else {
                self.push("(");
            }
            for (earlier, value) in columns[..i].iter().zip(key) {
                self.push(earlier).push(" = ").bind(value.into()).push(" AND ");
            }
            self.push(column).push(operator).bind((&key[i]).into()).push(")");
        }
        self.push(")")
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The query with its values bound, ready to run. Safe from injection: the text
    /// is only ever assembled from the code's own fragments, and every value is bound.
    pub fn query(&self) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments> {
        let text = sqlx::AssertSqlSafe(self.text.as_str());
        self.binds.iter().fold(sqlx::query(text), |query, bind| match bind {
            Bind::Int(n) => query.bind(*n),
            Bind::Text(s) => query.bind(s.as_str()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LISTING: Listing = Listing {
        page_size: &fabula_runtime::rules::story::list_worlds_request::PAGE_SIZE,
        page_token: &fabula_runtime::rules::story::list_worlds_request::PAGE_TOKEN,
        filter: &fabula_runtime::rules::story::list_worlds_request::FILTER,
        columns: &[],
    };

    #[test]
    fn sizes_default_cap_and_refuse_negatives() {
        assert_eq!(Page::parse(0, "", &LISTING, &["q"]).unwrap().size, 50);
        assert_eq!(Page::parse(7, "", &LISTING, &["q"]).unwrap().size, 7);
        assert_eq!(Page::parse(10_000, "", &LISTING, &["q"]).unwrap().size, 200);
        assert!(Page::parse(-1, "", &LISTING, &["q"]).is_err());
    }

    #[test]
    fn a_page_ends_before_its_rows_outweigh_the_budget() {
        let page = Page::parse(10, "", &LISTING, &["q"]).unwrap();
        let key = |n: &usize| vec![Key::Int(*n as i64)];
        let (rows, token) = page.finish_within(vec![4, 4, 4, 4], key, |n| *n, 9);
        assert_eq!((rows.len(), token.is_empty()), (2, false), "two rows of 4 fit in 9");
        let (rows, _) = page.finish_within(vec![100, 1], key, |n| *n, 9);
        assert_eq!(rows, vec![100], "a page holds one row even when it is too heavy");
        let (rows, token) = page.finish_within(vec![1, 1], key, |n| *n, 9);
        assert_eq!((rows.len(), token.is_empty()), (2, true), "everything fits: no next page");
    }

    #[test]
    fn a_token_only_works_for_its_query() {
        let page = Page::parse(10, "", &LISTING, &["list", "world-1", ""]).unwrap();
        let token = page.next_token(vec![Key::Int(3), Key::Text("abc".into())]);
        let next = Page::parse(10, &token, &LISTING, &["list", "world-1", ""]).unwrap();
        assert_eq!(next.after, Some(vec![Key::Int(3), Key::Text("abc".into())]));
        assert!(Page::parse(10, &token, &LISTING, &["list", "world-1", "genre = \"x\""]).is_err());
        assert!(Page::parse(10, "garbage!", &LISTING, &["list", "world-1", ""]).is_err());
    }

    #[test]
    fn keyset_conditions_number_their_placeholders() {
        let mut sql = Sql::new("SELECT 1 FROM t WHERE w = ");
        sql.bind(Bind::Text("w".into()));
        sql.push_after(&["a", "b"], &[Key::Int(1), Key::Text("x".into())]);
        assert_eq!(sql.text(), "SELECT 1 FROM t WHERE w = $1 AND ((a > $2) OR (a = $3 AND b > $4))");
        let mut before = Sql::new("");
        before.push_before(&["a", "b"], &[Key::Int(1), Key::Text("x".into())]);
        assert_eq!(before.text(), " AND ((a < $1) OR (a = $2 AND b < $3))");
    }

    #[test]
    fn a_forged_key_of_another_shape_is_refused() {
        let page = Page::parse(10, "", &LISTING, &["q"]).unwrap();
        let example = [Key::Int(0), Key::Text(String::new())];
        assert_eq!(page.after_like(&example).unwrap(), None);
        let cases: [(&[Key], bool, &str); 4] = [
            (&[Key::Int(3), Key::Text("id".into())], true, "the right shape"),
            (&[], false, "no values"),
            (&[Key::Int(3)], false, "too few values"),
            (&[Key::Text("3".into()), Key::Text("id".into())], false, "a text where a number belongs"),
        ];
        for (key, accepted, why) in cases {
            let token = page.next_token(key.to_vec());
            let next = Page::parse(10, &token, &LISTING, &["q"]).unwrap();
            assert_eq!(next.after_like(&example).is_ok(), accepted, "{why}");
        }
    }
}
