package github

import (
	"fmt"

	"github.com/rs/zerolog"

	"runboat.dev/shared/config"
)

// PosterFor returns the StatusPoster the configuration asks for: none when
// commit statuses are disabled or no credentials are set (with a warning
// then), a go-github client with the configured Access otherwise.
func PosterFor(cfg config.GitHub, logger *zerolog.Logger) (StatusPoster, error) {
	if cfg.DisableCommitStatuses {
		return NoopStatusPoster{}, nil
	}
	access, err := NewAccess(cfg, nil)
	if err != nil {
		return nil, err
	}
	if access.Anonymous() {
		logger.Warn().Msg("no RUNBOAT_GITHUB_TOKEN nor GitHub App: commit statuses are not posted")
		return NoopStatusPoster{}, nil
	}
	c, err := access.Client()
	if err != nil {
		return nil, fmt.Errorf("failed to create the GitHub client: %w", err)
	}
	return &Client{client: c}, nil
}
