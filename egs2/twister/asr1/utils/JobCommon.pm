# Shared by utils/run.pl and utils/slurm.pl: argument parsing, safe command building,
# log-name handling and the failure report. Not a program; see run.pl for the usage.
#
# Command building (the one rule both runners follow): each command word reaches the
# program verbatim. Words are single-quoted for bash (no expansion, no globbing, no `;`),
# except a word that is exactly a shell operator (| || && ; < > >> 2> 2>> &> 2>&1 >&2 |&),
# which stays bare so Kaldi-style pipelines `prog a \| gzip -c \> out.JOB.gz` work.
# For shell code, pass it as one word to bash: `run.pl log bash -c 'exit $((JOB == 2))'`.
# JOB (the variable of JOB=1:N) is replaced as plain text in every word and in the log name.
package JobCommon;
use strict;
use warnings;
use File::Basename qw(dirname basename);
use Exporter qw(import);
our @EXPORT_OK = qw(parse_args build_command quote_word with_job log_for queue_base
                    ended_code report_failures);

my %OPERATORS = map { $_ => 1 } ('|', '||', '&&', ';', '<', '>', '>>', '2>', '2>>', '&>',
                                   '2>&1', '>&2', '1>&2', '|&');

# Parse `[--opt value|--opt=value]... [VAR=a:b] log cmd...`. $allowed: option name =>
# default (names use `_`; `--max-jobs-run` and `--max_jobs_run` are the same option).
# Returns a hash: opts, jobvar (undef if no range), first, last, log, words.
sub parse_args {
  my ($prog, $usage, $allowed, @argv) = @_;
  my %opts = %$allowed;
  while (@argv && $argv[0] =~ /^--/) {
    my $arg = shift @argv;
    my ($name, $value) = $arg =~ /^--([^=]+)=(.*)$/s ? ($1, $2) : (substr($arg, 2), undef);
    $name =~ tr/-/_/;
    usage_error($prog, $usage, "unknown option $arg") unless exists $allowed->{$name};
    if (!defined $value) {
      usage_error($prog, $usage, "option $arg needs a value") unless @argv;
      $value = shift @argv;
    }
    $opts{$name} = $value;
  }
  check_options($prog, $usage, \%opts);
  my %r = (opts => \%opts, jobvar => undef, first => 1, last => 1);
  if (@argv && $argv[0] =~ /^([A-Za-z_]\w*)=(\d+)(?::(\d+))?$/) {
    ($r{jobvar}, $r{first}, $r{last}) = ($1, $2, defined $3 ? $3 : $2);
    shift @argv;
    usage_error($prog, $usage, "empty job range $r{jobvar}=$r{first}:$r{last}")
      if $r{first} > $r{last};
  }
  usage_error($prog, $usage, "need a log file and a command") if @argv < 2;
  $r{log} = shift @argv;
  $r{words} = \@argv;
  if (defined $r{jobvar} && $r{last} > $r{first} && index($r{log}, $r{jobvar}) < 0) {
    usage_error($prog, $usage,
      "several jobs would share one log: put $r{jobvar} in the log name ($r{log})");
  }
  return \%r;
}

sub check_options {
  my ($prog, $usage, $o) = @_;
  my %valid = (gpu => qr/^\d+$/, num_threads => qr/^[1-9]\d*$/,
             max_jobs_run => qr/^[1-9]\d*$/, mem => qr/^\d+[KMGT]?$/i, time => qr/^[\d:-]+$/,
             dry_run => qr/^(true|false)$/);
  for my $k (sort keys %valid) {
    next unless exists $o->{$k} && defined $o->{$k} && $o->{$k} ne '';
    usage_error($prog, $usage, "bad value '$o->{$k}' for --$k") unless $o->{$k} =~ $valid{$k};
  }
}

sub usage_error {
  my ($prog, $usage, $msg) = @_;
  print STDERR "$usage\n$prog: ERROR: $msg\n";
  exit 1;
}

# Quote one word for bash: bare if it only has harmless characters, else single-quoted.
sub quote_word {
  my ($s) = @_;
  return $s if $s =~ m{^[A-Za-z0-9_\-+=/.,:@%]+$};
  $s =~ s/'/'\\''/g;
  return "'$s'";
}

# Quote a word that may contain the job variable: the pieces between the occurrences are
# quoted and joined with $job (a number, or "$task_id" for a script evaluated later).
sub with_job {
  my ($word, $jobvar, $job) = @_;
  return quote_word($word) unless defined $jobvar && index($word, $jobvar) >= 0;
  return quote_word($word =~ s/\Q$jobvar\E/$job/gr) if $job =~ /^\d+$/;   # known id
  my @pieces = split /\Q$jobvar\E/, $word, -1;
  return join $job, map { $_ eq '' ? '' : quote_word($_) } @pieces;
}

# The bash command line for the words (operators bare, everything else quoted).
sub build_command {
  my ($words, $jobvar, $job) = @_;
  return join ' ', map { $OPERATORS{$_} ? $_ : with_job($_, $jobvar, $job) } @$words;
}

# The log path of job $id (plain text substitution, like Kaldi).
sub log_for {
  my ($log, $jobvar, $id) = @_;
  $log =~ s/\Q$jobvar\E/$id/g if defined $jobvar;
  return $log;
}

# Name used for the generated files under <logdir>/q/: the log name without the job
# variable and without .log (log/decode.JOB.log -> decode).
sub queue_base {
  my ($log, $jobvar) = @_;
  my $base = basename($log);
  $base =~ s/[._-]?\Q$jobvar\E//g if defined $jobvar;
  $base =~ s/\.log$//;
  return $base eq '' ? 'job' : $base;
}

# The code on the last "# Ended (code N)" line of a log, or undef if the job did not end.
sub ended_code {
  my ($path) = @_;
  open(my $fh, '<', $path) or return undef;
  my $code;
  while (my $line = <$fh>) { $code = $1 if $line =~ /^# Ended \(code (\d+)\)/; }
  return $code;
}

# Print which logs to read and return the exit status for the runner (0 or 1).
sub report_failures {
  my ($prog, $total, $failed) = @_;   # $failed: list of [log path, reason]
  return 0 unless @$failed;
  my $n = @$failed;
  my $shown = 0;
  for my $f (@$failed) {
    if (++$shown > 20) { print STDERR "$prog: ... and ", $n - 20, " more\n"; last; }
    print STDERR "$prog: job failed ($f->[1]), log is in $f->[0]\n";
  }
  print STDERR "$prog: $n / $total failed\n";
  return 1;
}

1;
