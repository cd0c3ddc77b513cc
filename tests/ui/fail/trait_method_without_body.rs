trait Tool {
    #[weave::op]
    fn run(&self, input: String) -> String;
}

fn main() {}
