import type { Command } from 'commander';
import { commandIo } from '../context.ts';
import type { FleetRunOptions } from '../../flows/fleet.ts';

/**
 * `bootstrap` (the built-in playbook) and `run PLAYBOOK` (any playbook). Both only declare flags
 * here; the engine, the playbook loader and the task kinds are imported when the action runs.
 */
export function registerBootstrap(program: Command): void {
  withRunOptions(
    program
      .command('bootstrap')
      .summary('install Flux on a cluster with its SOPS key, idempotently')
      .description(
        'Run the built-in bootstrap playbook (playbooks/bootstrap.yaml) for a cluster of fluxstrap.yaml: preflight, namespace, ' +
          'Git and sops-age Secrets, Flux components, controllers, sync objects, reconcile, decryption check. Safe to run again. ' +
          'Several clusters (--cluster a,b or --all-clusters) run concurrently; one failing does not stop the others. ' +
          'Without a checkout (no fluxstrap.yaml, not in a Git work tree) the branch of --git-url is cloned into a private temporary folder, ' +
          'its fluxstrap.yaml read (flags win) and the run works from that commit: disaster recovery from a bare machine.\n\n' +
          'Exit codes: 0 done, 1 failed, 2 bad usage, 3 --check found changes to make.',
      ),
  ).action(async (opts: CommandOptions, cmd: Command) => {
    const { builtinPlaybook } = await import('../../flows/bootstrap.ts');
    await runAction({ ...opts, playbook: builtinPlaybook('bootstrap'), require: ['git-url'] }, cmd);
  });

  withRunOptions(
    program
      .command('run')
      .argument('<playbook>', 'playbook file (YAML), e.g. a copy of playbooks/bootstrap.yaml')
      .summary('run a playbook of fluxstrap task kinds')
      .description(
        'Validate the playbook against every task kind before anything runs, then run it.\n\nExit codes: 0 done, 1 failed, 2 bad usage, 3 --check found changes to make.',
      ),
  ).action(async (playbook: string, opts: CommandOptions, cmd: Command) => {
    await runAction({ ...opts, playbook }, cmd);
  });
}

/** Commander sets only the keys of options given (or defaulted), matching the optional fields. */
type CommandOptions = Omit<FleetRunOptions, 'playbook' | 'require'>;

const collect = (value: string, previous: string[] = []) => [...previous, value];

function withRunOptions(cmd: Command): Command {
  return withClusterOptions(cmd, true)
    .option('--check', 'change nothing: report what would change (exit 3 if anything would)')
    .option('--diff', 'show before/after of each change (secret values masked)')
    .option('--rotate-secrets', 'replace Secrets whose content differs instead of refusing')
    .option('--timeout <duration>', 'budget of each wait, e.g. 90s, 5m', '5m')
    .option('-e, --extra-vars <name=value>', 'set a playbook variable (repeatable)', collect)
    .option('--tags <list>', 'run only tasks with one of these tags (comma-separated)')
    .option('--skip-tags <list>', 'skip tasks with one of these tags')
    .option('--list-tasks', 'validate the playbook and list its tasks; run nothing');
}

/** How a command names its cluster (or, `several`, its clusters): the settings resolveClusterFlags reads, as flags. */
export function withClusterOptions(cmd: Command, several = false): Command {
  const about = 'cluster of fluxstrap.yaml (default: $FLUXSTRAP_CLUSTER, defaultCluster, or the only one)';
  const named = several
    ? cmd
        .option('--cluster <names>', `${about}; repeat or comma-separate for several`, collect)
        .option('--all-clusters', 'every cluster of fluxstrap.yaml')
        .option('--parallel <n>', 'how many of several clusters run at once (default: 4)')
    : cmd.option('--cluster <name>', about);
  return named
    .option('--repo <dir>', 'repository root (default: $FLUXSTRAP_REPO, else the nearest folder up holding fluxstrap.yaml)')
    .option('--kubeconfig <file>', 'kubeconfig file ($FLUXSTRAP_KUBECONFIG)')
    .option('--context <name>', 'kube context ($FLUXSTRAP_CONTEXT)')
    .option('--git-url <url>', 'Git URL Flux pulls from ($FLUXSTRAP_GIT_URL)')
    .option('--branch <name>', 'branch Flux follows ($FLUXSTRAP_GIT_BRANCH; default main)')
    .option('--path <dir>', 'cluster folder in the repository ($FLUXSTRAP_PATH; default clusters/<cluster>)')
    .option('--git-username <name>', 'HTTPS auth: account name sent with the token ($FLUXSTRAP_GIT_USERNAME; default: git, or fluxstrap.yaml)')
    .option('--git-token-env <var>', 'HTTPS auth: environment variable holding the Git token ($FLUXSTRAP_GIT_TOKEN_ENV); the token itself is never a flag')
    .option('--git-ssh-key <file>', 'SSH auth: deploy key file, with --git-known-hosts ($FLUXSTRAP_GIT_SSH_KEY)')
    .option('--git-known-hosts <file>', "SSH auth: known_hosts file with the Git server's host key ($FLUXSTRAP_GIT_KNOWN_HOSTS)")
    .option('--age-key-file <file>', 'age key file ($FLUXSTRAP_AGE_KEY_FILE; default from fluxstrap.yaml, then as sops)')
    .option('--age-key-backup <file>', 'the age key from a `fluxstrap keys backup` file, opened in memory ($FLUXSTRAP_AGE_KEY_BACKUP)')
    .option(
      '--passphrase-file <file>',
      "the backup's passphrase (first line) ($FLUXSTRAP_BACKUP_PASSPHRASE_FILE; else $FLUXSTRAP_BACKUP_PASSPHRASE, else asked at a terminal)",
    )
    .option(
      '--github-api-url <url>',
      'GitHub Enterprise Server REST API, e.g. https://ghe.example.com/api/v3 ($FLUXSTRAP_GITHUB_API_URL; default git.github.apiUrl, else https://api.github.com)',
    )
    .option('--gitea-api-url <url>', "Gitea's REST API root for a cluster with git.provider gitea ($FLUXSTRAP_GITEA_API_URL; default git.gitea.apiUrl)");
}

async function runAction(opts: FleetRunOptions, cmd: Command): Promise<void> {
  const { singleCluster } = await import('../../cluster/resolve.ts');
  const { runPlaybookCommand } = await import('../../flows/bootstrap.ts');
  const single = singleCluster(opts);
  if (single) {
    process.exitCode = await runPlaybookCommand(single, commandIo(cmd));
    return;
  }
  // Only several clusters load the multi-cluster runner, so one cluster runs exactly as before.
  const { runFleetCommand } = await import('../../flows/fleet.ts');
  process.exitCode = await runFleetCommand(opts, commandIo(cmd));
}
