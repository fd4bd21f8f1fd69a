package github

import (
	"fmt"

	"github.com/rs/zerolog"

	"runboat.dev/shared/config"
)

// PosterFor returns the StatusPoster the configuration asks for: none when
// commit statuses are disabled or no token is set (with a warning then), a
// go-github client otherwise.
func PosterFor(cfg config.GitHub, logger *zerolog.Logger) (StatusPoster, error) {
	if cfg.DisableCommitStatuses {
		return NoopStatusPoster{}, nil
	}
	if cfg.Token == "" {
		logger.Warn().Msg("no RUNBOAT_GITHUB_TOKEN: commit statuses are not posted")
		return NoopStatusPoster{}, nil
	}
	c, err := NewClient(nil, cfg.Token.Value(), "")
	if err != nil {
		return nil, fmt.Errorf("failed to create the GitHub client: %w", err)
	}
	return c, nil
}
