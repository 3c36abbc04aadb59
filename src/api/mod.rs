pub mod submission;
