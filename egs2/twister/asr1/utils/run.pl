#!/usr/bin/env perl
# run.pl: run a command (or an array of jobs) on this machine, Kaldi-style.
#
# Usage:
#   utils/run.pl [options] [JOB=1:N] log/x.JOB.log cmd [args...]
#   utils/run.pl JOB=1:4 exp/log/decode.JOB.log python -m twister_plugin.bin.decode --shard JOB
#   utils/run.pl exp/log/pipe.log prog in.txt \| gzip -c \> out.gz
#   utils/run.pl JOB=1:3 log/t.JOB.log bash -c 'exit $((JOB == 2))'   # job 2 fails
# Options (each takes a value; `--name value` or `--name=value`):
#   --max-jobs-run N   run at most N jobs at once (default: nproc)
#   --num_threads N    threads per job, written to the log's Accounting line (default 1)
#   --gpu N            N > 0: job J sees its own N GPUs through CUDA_VISIBLE_DEVICES, round
#                      robin: with G GPUs and N = 1, job J gets GPU (J-1) % G. The GPUs are
#                      TWISTER_GPU_IDS (comma list, e.g. 0,1), else an already set
#                      CUDA_VISIBLE_DEVICES, else `nvidia-smi -L`; none found (CPU machine):
#                      nothing is set. Jobs beyond G/N share GPUs; bound them with --max-jobs-run.
#   --mem 4G, --time T, --config FILE
#                      accepted so cmd.sh can switch to slurm.pl; ignored here
# Each job writes its log: a header (the command, the start time), the command's stdout and
# stderr, then "# Accounting: time=S threads=T" and "# Ended (code C) at DATE, elapsed time
# S seconds". The command words reach the program verbatim (see utils/JobCommon.pm): ids
# or paths with spaces or `;` cannot run shell code. Commands run with bash and pipefail;
# stdin is /dev/null. Exit status: 0 if every job ended with code 0, else 1, after
# printing the logs of the failed jobs.
use strict;
use warnings;
use FindBin qw($RealBin);
use lib $RealBin;
use File::Path qw(make_path);
use File::Basename qw(dirname);
use POSIX ();
use JobCommon qw(parse_args build_command log_for report_failures);

my $prog = 'run.pl';
$SIG{__DIE__} = sub { print STDERR $_[0]; exit 1 };   # errors exit 1, not errno
my $USAGE = <<'END';
Usage: utils/run.pl [options] [JOB=1:N] log/x.JOB.log cmd [args...]
  --max-jobs-run N (default nproc)  --num_threads N (default 1)
  --gpu N (default 0): N GPUs a job, from TWISTER_GPU_IDS / CUDA_VISIBLE_DEVICES / nvidia-smi -L
  --mem, --time, --config: accepted for slurm.pl compatibility, ignored
END

sub nproc {   # CPUs we may use (nproc itself would follow OMP_NUM_THREADS, set by path.sh)
  local @ENV{qw(OMP_NUM_THREADS OMP_THREAD_LIMIT)};
  delete @ENV{qw(OMP_NUM_THREADS OMP_THREAD_LIMIT)};
  my $n = `nproc 2>/dev/null`;
  return ($n && $n =~ /^(\d+)/ && $1 > 0) ? $1 : 1;
}

my $args = parse_args($prog, $USAGE,
  { max_jobs_run => nproc(), num_threads => 1, mem => '', gpu => 0, time => '',
    config => '' }, @ARGV);
my $o = $args->{opts};

# The GPU ids jobs are spread over: TWISTER_GPU_IDS, else CUDA_VISIBLE_DEVICES, else the GPUs
# `nvidia-smi -L` lists; () on a machine without GPUs.
sub gpu_ids {
  for my $var (qw(TWISTER_GPU_IDS CUDA_VISIBLE_DEVICES)) {
    next unless defined $ENV{$var};
    my $v = $ENV{$var};
    return () if $v eq '' && $var eq 'CUDA_VISIBLE_DEVICES';   # GPUs deliberately hidden
    die "$prog: $var='$v': want a comma-separated list of GPU ids, e.g. 0,1\n"
      unless $v =~ /^[\w-]+(,[\w-]+)*$/;
    return split /,/, $v;
  }
  my @lines = `nvidia-smi -L 2>/dev/null`;
  return map { /^GPU (\d+):/ ? $1 : () } @lines;
}

my @gpus = $o->{gpu} > 0 ? gpu_ids() : ();
die "$prog: --gpu $o->{gpu} but only " . scalar(@gpus) . " GPU(s): @gpus\n"
  if @gpus && $o->{gpu} > @gpus;

# The CUDA_VISIBLE_DEVICES value of job $id (1-based), or undef when no GPUs are in use.
sub gpus_of_job {
  my ($id) = @_;
  return undef unless @gpus;
  my $n = $o->{gpu};
  my $first = (($id - 1) * $n) % @gpus;
  return join ',', map { $gpus[($first + $_) % @gpus] } 0 .. $n - 1;
}

sub now { POSIX::strftime('%a %b %e %H:%M:%S %Z %Y', localtime) }   # like date(1)

# Run one job in this (child) process; returns the command's exit code.
sub run_job {
  my ($id) = @_;
  my $log = log_for($args->{log}, $args->{jobvar}, $id);
  my $cmd = build_command($args->{words}, $args->{jobvar}, $id);
  my $dir = dirname($log);
  make_path($dir) unless -d $dir;
  my $cvd = gpus_of_job($id);
  $ENV{CUDA_VISIBLE_DEVICES} = $cvd if defined $cvd;
  open(my $fh, '>', $log) or die "$prog: cannot write $log: $!\n";
  print $fh "# $cmd\n# Started at " . now() . "\n";
  print $fh "# CUDA_VISIBLE_DEVICES=$cvd\n" if defined $cvd;
  print $fh "#\n";
  close $fh;
  my $t0 = time;
  open(STDIN, '<', '/dev/null') or die "$prog: /dev/null: $!\n";
  open(STDOUT, '>>', $log) or die "$prog: cannot append to $log: $!\n";
  open(STDERR, '>&', \*STDOUT) or die "$prog: cannot redirect stderr: $!\n";
  system('bash', '-c', "set -o pipefail\n$cmd");
  my $code = $? == -1 ? 127 : ($? & 127) ? 128 + ($? & 127) : $? >> 8;
  my $elapsed = time - $t0;
  open($fh, '>>', $log) or die "$prog: cannot append to $log: $!\n";
  print $fh "# Accounting: time=$elapsed threads=$o->{num_threads}\n";
  print $fh "# Ended (code $code) at " . now() . ", elapsed time $elapsed seconds\n";
  close $fh;
  return $code;
}

my %running;   # pid -> job id
my %code;      # job id -> exit code of its child

sub reap {   # wait for one child to end
  my $pid = waitpid(-1, 0);
  return if $pid <= 0;
  my $id = delete $running{$pid};
  $code{$id} = ($? >> 8) || ($? & 127) if defined $id;
}

# Kill every running job (its whole process group) when we are interrupted.
for my $sig (qw(INT TERM HUP)) {
  $SIG{$sig} = sub {
    kill 'TERM', map { -$_ } keys %running;
    print STDERR "$prog: caught SIG$sig, killed ", scalar(keys %running), " running job(s)\n";
    exit 1;
  };
}

for my $id ($args->{first} .. $args->{last}) {
  reap() while keys %running >= $o->{max_jobs_run};
  my $pid = fork();
  die "$prog: fork failed: $!\n" unless defined $pid;
  if ($pid == 0) {
    setpgrp(0, 0);
    $SIG{$_} = 'DEFAULT' for qw(INT TERM HUP);
    POSIX::_exit(run_job($id) ? 1 : 0);
  }
  $running{$pid} = $id;
}
reap() while keys %running;

my @failed;
for my $id ($args->{first} .. $args->{last}) {
  next unless $code{$id};
  my $log = log_for($args->{log}, $args->{jobvar}, $id);
  my $code = JobCommon::ended_code($log);
  push @failed, [$log, defined $code ? "code $code" : 'no end line'];
}
exit report_failures($prog, $args->{last} - $args->{first} + 1, \@failed);
