#!/usr/bin/env perl
# slurm.pl: run a command (or an array of jobs) as ONE Slurm array job, Kaldi-style.
#
# Usage:
#   utils/slurm.pl [options] [JOB=1:N] log/x.JOB.log cmd [args...]
#   utils/slurm.pl --mem 8G --gpu 1 JOB=1:4 exp/log/train.JOB.log python -m twister_plugin.bin.x
#   utils/slurm.pl JOB=1:3 log/t.JOB.log bash -c 'exit $((JOB == 2))'    # task 2 fails
#   utils/slurm.pl --dry-run true JOB=1:2 log/t.JOB.log echo JOB    # print sbatch, submit nothing
# Options (each takes a value; `--name value` or `--name=value`):
#   --mem 4G          sbatch --mem (memory per job; default from the config, else Slurm's)
#   --gpu N           sbatch --gres=gpu:N when N > 0 (and the config's gpu_partition/gpu_extra)
#   --num_threads N   sbatch --cpus-per-task=N (default 1)
#   --max-jobs-run K  at most K tasks at once: --array=1-N%K
#   --time T          sbatch --time (default from the config)
#   --config FILE     partition and extra sbatch options (default conf/slurm.conf if present;
#                     the format is documented in egs2/twister/asr1/conf/slurm.conf)
#   --dry-run true    write the batch script, print the sbatch command, submit nothing
# The command is written, quoted, into <logdir>/q/<name>.sh (see utils/JobCommon.pm: ids or
# paths with spaces or `;` cannot run shell code); Slurm's own output goes to
# <logdir>/q/<name>.<task>.out. Each task writes its log like run.pl (header, output,
# "# Accounting: ..." and "# Ended (code C) ..."). slurm.pl submits, polls squeue until the
# job has left the queue, then reads the "Ended" line of every log: exit 1 naming the failed
# task logs if any task failed or never ended (killed, out of time or memory), else 0.
# Interrupting slurm.pl (Ctrl-C, TERM) cancels the job with scancel.
use strict;
use warnings;
use FindBin qw($RealBin);
use lib $RealBin;
use Cwd qw(getcwd);
use File::Path qw(make_path);
use File::Basename qw(dirname);
use Time::HiRes qw(sleep);
use POSIX ();
use JobCommon qw(parse_args build_command quote_word with_job log_for queue_base
                 ended_code report_failures);

my $prog = 'slurm.pl';
$SIG{__DIE__} = sub { print STDERR $_[0]; exit 1 };   # errors exit 1, not errno
my $USAGE = <<'END';
Usage: utils/slurm.pl [options] [JOB=1:N] log/x.JOB.log cmd [args...]
  --mem 4G  --gpu N  --num_threads N  --max-jobs-run K  --time T  --config FILE
  --dry-run true|false
END
my $args = parse_args($prog, $USAGE,
  { mem => '', gpu => 0, num_threads => 1, max_jobs_run => '', time => '', config => '',
    dry_run => 'false' }, @ARGV);
my $o = $args->{opts};
my ($jobvar, $first, $last) = @$args{qw(jobvar first last)};

# Config: `name = value` lines (see conf/slurm.conf). Returns a hash of the settings.
sub read_config {
  my ($path) = @_;
  my %c = map { $_ => '' } qw(partition gpu_partition time extra gpu_extra mem);
  return \%c if $path eq '';
  open(my $fh, '<', $path) or die "$prog: cannot read config $path: $!\n";
  while (my $line = <$fh>) {
    $line =~ s/#.*//; $line =~ s/^\s+|\s+$//g;
    next if $line eq '';
    my ($k, $v) = $line =~ /^(\w+)\s*=\s*(.*)$/
      or die "$prog: $path line $.: expected `name = value`, got '$line'\n";
    die "$prog: $path line $.: unknown setting '$k' (known: @{[sort keys %c]})\n"
      unless exists $c{$k};
    $c{$k} = $v;
  }
  return \%c;
}

# The sbatch argument list (no shell involved) for the batch script $script.
sub sbatch_args {
  my ($c, $qdir, $base, $script) = @_;
  my $gpu = $o->{gpu} > 0;
  my $out = "$qdir/$base." . (defined $jobvar ? '%a' : '%j') . '.out';
  $out =~ s/%(?![aj]\.out$)/%%/g;           # a literal % in the path is %% for Slurm
  my @a = ('sbatch', '--parsable', "--job-name=$base", "--output=$out", '--nodes=1',
           '--ntasks=1', "--cpus-per-task=$o->{num_threads}");
  if (defined $jobvar) {
    my $limit = $o->{max_jobs_run} ne '' ? "%$o->{max_jobs_run}" : '';
    push @a, "--array=$first-$last$limit";
  }
  my $mem = $o->{mem} ne '' ? $o->{mem} : $c->{mem};
  push @a, "--mem=$mem" if $mem ne '';
  push @a, "--gres=gpu:$o->{gpu}" if $gpu;
  my $part = $gpu && $c->{gpu_partition} ne '' ? $c->{gpu_partition} : $c->{partition};
  push @a, "--partition=$part" if $part ne '';
  my $time = $o->{time} ne '' ? $o->{time} : $c->{time};
  push @a, "--time=$time" if $time ne '';
  push @a, split(' ', $c->{extra}), ($gpu ? split(' ', $c->{gpu_extra}) : ());
  return (@a, $script);
}

# The batch script: every user-given text is quoted (never in a comment: a newline there
# would end the comment). The task id comes from Slurm, or from $JOB when run by hand.
sub batch_script {
  my ($cwd, $sbatch) = @_;
  my $id = defined $jobvar ? '"$task_id"' : undef;
  my $cmd = build_command($args->{words}, $jobvar, $id);
  my $header = build_command($args->{words});   # shown with the job variable in place
  my $log = with_job($args->{log}, $jobvar, $id);
  my $task = defined $jobvar ? 'task_id=${SLURM_ARRAY_TASK_ID:-${JOB:?set JOB to run by hand}}'
                             : 'task_id=';
  return <<"END";
#!/usr/bin/env bash
# Generated by utils/slurm.pl; submitted with the sbatch command below. To rerun task 3
# by hand: JOB=3 bash <this file>.
sbatch_cmd=@{[quote_word(join ' ', map { quote_word($_) } @$sbatch)]}
cd @{[quote_word($cwd)]} || exit 1
$task
log=$log
mkdir -p -- "\$(dirname -- "\$log")"
start=\$(date +%s)
{ printf '# %s\\n' @{[with_job($header, $jobvar, $id)]}; echo "# Started at \$(date)"; echo '#'; } > "\$log"
( set -o pipefail
$cmd
) < /dev/null >> "\$log" 2>&1
code=\$?
end=\$(date +%s)
echo "# Accounting: time=\$((end - start)) threads=$o->{num_threads}" >> "\$log"
echo "# Ended (code \$code) at \$(date), elapsed time \$((end - start)) seconds" >> "\$log"
exit \$code
END
}

# Run a program without a shell; returns (exit status, stdout+stderr).
sub capture {
  my @cmd = @_;
  my $pid = open(my $ph, '-|') // die "$prog: fork failed: $!\n";
  if ($pid == 0) {
    open(STDERR, '>&', \*STDOUT);
    { exec { $cmd[0] } @cmd }   # on failure Perl warns "Can't exec ..." into the pipe
    POSIX::_exit(127);
  }
  local $/;
  my $out = <$ph> // '';
  close $ph;
  return ($? >> 8, $out);
}

# Wait until the job has left squeue (finished, failed or cancelled).
sub wait_for {
  my ($job_id) = @_;
  my ($delay, $errors) = (0.5, 0);
  while (1) {
    sleep $delay;
    $delay = $delay * 1.25 > 5 ? 5 : $delay * 1.25;   # squeue at most every 5 s
    my ($rc, $out) = capture('squeue', '-h', '-j', $job_id, '-o', '%i');
    return if $rc == 0 && $out !~ /\S/;
    return if $rc != 0 && $out =~ /Invalid job id/i;
    next if $rc == 0;
    die "$prog: squeue keeps failing for job $job_id: $out" if ++$errors >= 10;
  }
}

my $cwd = getcwd();
my $qdir = dirname($args->{log}) . '/q';
die "$prog: the job variable $jobvar must be in the log's file name, not its folder\n"
  if defined $jobvar && index($qdir, $jobvar) >= 0;
my $base = queue_base($args->{log}, $jobvar);
my $script = "$qdir/$base.sh";
my $config = $o->{config} ne '' ? $o->{config} : (-f 'conf/slurm.conf' ? 'conf/slurm.conf' : '');
my @sbatch = sbatch_args(read_config($config), $qdir, $base, $script);
make_path($qdir) unless -d $qdir;
for my $id ($first .. $last) {   # per-task log folders exist before the tasks start
  my $dir = dirname(log_for($args->{log}, $jobvar, $id));
  make_path($dir) unless -d $dir;
}
open(my $fh, '>', $script) or die "$prog: cannot write $script: $!\n";
print $fh batch_script($cwd, \@sbatch);
close $fh;
if ($o->{dry_run} eq 'true') {
  print join(' ', map { quote_word($_) } @sbatch), "\n";
  exit 0;
}

my ($rc, $out) = capture(@sbatch);
my ($job_id) = $out =~ /^(\d+)/m;
die "$prog: sbatch failed (exit $rc): $out" if $rc != 0 || !defined $job_id;
for my $sig (qw(INT TERM HUP)) {
  $SIG{$sig} = sub {
    system('scancel', $job_id);
    print STDERR "$prog: caught SIG$sig, cancelled Slurm job $job_id\n";
    exit 1;
  };
}
wait_for($job_id);

my %code = map { $_ => ended_code(log_for($args->{log}, $jobvar, $_)) } $first .. $last;
for (1 .. 10) {   # a shared file system may show the last lines of a log late
  my @missing = grep { !defined $code{$_} } $first .. $last or last;
  sleep 1;
  $code{$_} = ended_code(log_for($args->{log}, $jobvar, $_)) for @missing;
}
my @failed;
for my $id ($first .. $last) {
  my $out = "$qdir/$base." . (defined $jobvar ? $id : $job_id) . '.out';
  if (defined $code{$id} && $code{$id} == 0) {
    unlink $out if -z $out;   # Slurm's own output: kept if it says something or the task failed
    next;
  }
  my $why = defined $code{$id} ? "code $code{$id}" : "no end line; see $out";
  push @failed, [log_for($args->{log}, $jobvar, $id), $why];
}
exit report_failures($prog, $last - $first + 1, \@failed);
