// Ops returning references borrowed from &self or from an argument.

struct Doc {
    title: String,
    words: Vec<String>,
}

impl Doc {
    #[weave::op]
    fn title(&self) -> &str {
        &self.title
    }

    #[weave::op]
    fn word(&self, i: usize) -> Option<&String> {
        self.words.get(i)
    }

    #[weave::op]
    fn words_mut(&mut self) -> &mut Vec<String> {
        &mut self.words
    }

    #[weave::op]
    async fn title_async(&self) -> &str {
        &self.title
    }
}

#[weave::op]
fn first_word(s: &str) -> &str {
    s.split(' ').next().unwrap_or("")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut d = Doc {
        title: "T".into(),
        words: vec!["a".into()],
    };
    assert_eq!(d.title(), "T");
    assert_eq!(d.word(0).map(String::as_str), Some("a"));
    d.words_mut().push("b".into());
    assert_eq!(d.words.len(), 2);
    assert_eq!(d.title_async().await, "T");
    assert_eq!(first_word("hello world"), "hello");
}
