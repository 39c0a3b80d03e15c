pub use fx::answer;
